// The key table behind every configuration path (TOML, --set, resume).
#include "train/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/read_file.h"
#include "model/option_text.h"
#include "tasks/iarc.h"
#include "train/config_toml.h"

namespace attnlab {

std::string fmt_double(double x) {
    std::ostringstream os;
    os << x;
    return os.str();
}

namespace {

double parse_float(const std::string& key, const std::string& v, double lo, double hi) {
    const std::string t = trim(v);
    size_t used = 0;
    double x = 0;
    try {
        x = std::stod(t, &used);
    } catch (...) {
        used = 0;
    }
    if (used == 0 || used != t.size() || !std::isfinite(x))
        throw Error(key + " = '" + v + "' is not a finite number");
    if (x < lo || x > hi)
        throw Error(key + " = " + t + " is out of range: must be in [" + fmt_double(lo) + ", " +
                    fmt_double(hi) + "]");
    return x;
}

std::vector<int> parse_int_list(const std::string& key, const std::string& v, long lo, long hi) {
    std::string t = trim(v);
    if (!t.empty() && t.front() == '[') t = t.substr(1);
    if (!t.empty() && t.back() == ']') t.pop_back();
    std::vector<int> out;
    std::stringstream ss(t);
    std::string item;
    while (std::getline(ss, item, ','))
        if (!trim(item).empty()) out.push_back(int(parse_int(key, item, lo, hi)));
    return out;
}

// A TOML basic string: backslash, quote and control characters escaped (file paths).
std::string toml_string(const std::string& s) {
    std::string out = "\"";
    for (const char ch : s) {
        if (ch == '"' || ch == '\\') {
            out += '\\';
            out += ch;
        } else if (uint8_t(ch) < 0x20 || ch == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(uint8_t(ch)));
            out += buf;
        } else {
            out += ch;
        }
    }
    return out + "\"";
}
// Whether s is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool is_utf8(const std::string& s) {
    for (size_t i = 0; i < s.size();) {
        const uint8_t c = uint8_t(s[i]);
        const size_t n = c < 0x80                 ? 1
                         : c >= 0xc2 && c <= 0xdf ? 2
                         : (c >> 4) == 0xe        ? 3
                         : c >= 0xf0 && c <= 0xf4 ? 4
                                                  : 0;
        if (n == 0 || i + n > s.size()) return false;
        uint32_t cp = n == 1 ? c : c & (0x7f >> n);
        for (size_t j = 1; j < n; j++) {
            if ((uint8_t(s[i + j]) >> 6) != 0x2) return false;
            cp = cp << 6 | (uint8_t(s[i + j]) & 0x3f);
        }
        const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < least[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += n;
    }
    return true;
}
// A path key's value: its config.toml must read back, and TOML strings are UTF-8.
std::string path_value(const std::string& key, const std::string& v) {
    const std::string t = trim(v);
    if (!is_utf8(t))
        throw Error(key +
                    " must be UTF-8 text (it is written to the run's config.toml); the "
                    "value given is not");
    // config.toml must read back as the same path, and reading unquotes and trims once more.
    if (trim(t) != t)
        throw Error(key + " = '" + t +
                    "': a path may not begin or end with a space, and may be quoted only once");
    return t;
}
std::string fmt_float(float x) {
    std::ostringstream os;
    os.precision(9);
    os << x;
    std::string s = os.str();
    if (s.find_first_of(".eE") == std::string::npos) s += ".0";
    return s;
}
// Shortest text that reads back as the same double (a run's stored config must resume exactly).
std::string fmt_float_exact(double x) {
    std::ostringstream os;
    os.precision(17);
    os << x;
    std::string s = os.str();
    for (int p = 1; p < 17; p++) {  // the fewest digits that still round-trip
        std::ostringstream shorter;
        shorter.precision(p);
        shorter << x;
        if (std::stod(shorter.str()) == x) {
            s = shorter.str();
            break;
        }
    }
    if (s.find_first_of(".eE") == std::string::npos) s += ".0";
    return s;
}
std::string int_list(const std::vector<int>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); i++) s += (i ? ", " : "") + std::to_string(v[i]);
    return s + "]";
}

#define INT_KEY(NAME, FIELD, LO, HI, DOC)                                                          \
    ConfigKey {                                                                                    \
        NAME, DOC,                                                                                 \
            [](RunConfig& c, const std::string& v) { c.FIELD = int(parse_int(NAME, v, LO, HI)); }, \
            [](const RunConfig& c) { return std::to_string(c.FIELD); }                             \
    }
#define FLOAT_KEY(NAME, FIELD, LO, HI, DOC)                       \
    ConfigKey {                                                   \
        NAME, DOC,                                                \
            [](RunConfig& c, const std::string& v) {              \
                c.FIELD = float(parse_float(NAME, v, LO, HI));    \
            },                                                    \
            [](const RunConfig& c) { return fmt_float(c.FIELD); } \
    }

std::vector<ConfigKey> model_keys() {
    std::vector<ConfigKey> k;
    // [model]: the model options' own table (model/config.h), with model.attention,
    // the map specification as given (resolved into model.attention per layer), after arch.
    for (const auto& o : model_options()) {
        if (o.key.empty()) continue;  // derived from the task and train.*
        const std::string range =
            o.field ? " (" + std::to_string(o.lo) + ".." + std::to_string(o.hi) + ")" : "";
        k.push_back({"model." + o.key, o.doc + range,
                     [set = o.set](RunConfig& c, const std::string& v) { set(c.model, v); },
                     [get = o.get](const RunConfig& c) { return get(c.model); }});
        if (o.key == "arch")
            k.push_back({"model.attention",
                         "attention map for all layers (" + attention_map_names() +
                             "), a comma-separated list with one per layer, or the preset "
                             "cogformer (softmax first and last layer, cog between)",
                         [](RunConfig& c, const std::string& v) { c.attention = trim(v); },
                         [](const RunConfig& c) { return quote(c.attention); }});
    }
    return k;
}

void add_task_keys(std::vector<ConfigKey>& k) {
    k.push_back({"task.name",
                 "task: iarc | ladder | multitask | text | fmnist (images, for model.arch = uvit)",
                 [](RunConfig& c, const std::string& v) {
                     c.task.name = choice("task.name", v, all_task_names());
                 },
                 [](const RunConfig& c) { return quote(c.task.name); }});
    k.push_back(INT_KEY("task.n", task.n, 2, 1000, "data alphabet size N"));
    k.push_back(INT_KEY("task.k", task.k, 1, 8, "ladder level K: delays 1, 2, 4, ..., 2^(K-1)"));
    k.push_back({"task.delays",
                 "ladder: explicit delays, e.g. [1, 3] (overrides task.k when non-empty)",
                 [](RunConfig& c, const std::string& v) {
                     c.task.delays = parse_int_list("task.delays", v, 1, 1024);
                 },
                 [](const RunConfig& c) { return int_list(c.task.delays); }});
    k.push_back({"task.tasks", "iarc: enabled tasks, a subset of \"IARC\"",
                 [](RunConfig& c, const std::string& v) {
                     check_iarc_tasks(trim(v));  // checked for every task: config.toml quotes it
                     c.task.tasks = trim(v);
                 },
                 [](const RunConfig& c) { return quote(c.task.tasks); }});
    k.push_back({"task.mu", "iarc: mean segment length (0, l_max]",
                 [](RunConfig& c, const std::string& v) {
                     c.task.mu = parse_float("task.mu", v, 1e-9, 1000);
                 },
                 [](const RunConfig& c) { return fmt_float(float(c.task.mu)); }});
    k.push_back(INT_KEY("task.l_max", task.l_max, 1, 1000, "iarc: longest segment"));
    k.push_back({"task.variant",
                 "iarc: lookup (C is an induction lookup) | modifier (C modifies the current task)",
                 [](RunConfig& c, const std::string& v) {
                     c.task.variant = choice("task.variant", v, {"lookup", "modifier"});
                 },
                 [](const RunConfig& c) { return quote(c.task.variant); }});
    k.push_back(
        {"task.p_c", "iarc modifier: probability that a control token after the first is C, [0, 1]",
         [](RunConfig& c, const std::string& v) { c.task.p_c = parse_float("task.p_c", v, 0, 1); },
         [](const RunConfig& c) { return fmt_float_exact(c.task.p_c); }});
    k.push_back(INT_KEY("task.gap_min", task.gap_min, 1, 1000,
                        "iarc modifier: smallest distance between control tokens"));
    k.push_back(INT_KEY("task.gap_max", task.gap_max, 1, 1000,
                        "iarc modifier: largest distance between control tokens"));
    k.push_back({"task.levels", "multitask: ladder level of each task, e.g. [2, 3, 4]",
                 [](RunConfig& c, const std::string& v) {
                     c.task.levels = parse_int_list("task.levels", v, 1, 8);
                 },
                 [](const RunConfig& c) { return int_list(c.task.levels); }});
    k.push_back(
        {"task.path",
         "text: the corpus, any file of bytes (training windows from its first 90%, "
         "evaluation from the last 10%); default: the King James Bible written by "
         "`make corpus`, relative to the working folder",
         [](RunConfig& c, const std::string& v) { c.task.path = path_value("task.path", v); },
         [](const RunConfig& c) { return toml_string(c.task.path); }});
    k.push_back(
        {"task.images",
         "fmnist: folder of the Fashion-MNIST IDX files (Debian's dataset-fashion-mnist)",
         [](RunConfig& c, const std::string& v) { c.task.images = path_value("task.images", v); },
         [](const RunConfig& c) { return toml_string(c.task.images); }});
}

void add_train_keys(std::vector<ConfigKey>& k) {
    k.push_back(INT_KEY("train.steps", train.steps, 1, 100000000, "optimizer steps"));
    k.push_back(INT_KEY("train.batch", train.batch, 1, 65536, "windows per step"));
    k.push_back(INT_KEY("train.context", train.context, 2, 8192, "window length T"));
    k.push_back(FLOAT_KEY("train.lr", train.lr, 1e-8, 10.0, "peak learning rate"));
    k.push_back({"train.seed", "seed of the model init and the training windows",
                 [](RunConfig& c, const std::string& v) {
                     c.train.seed = uint64_t(parse_int("train.seed", v, 0, 1L << 62));
                 },
                 [](const RunConfig& c) { return std::to_string(c.train.seed); }});
    k.push_back(INT_KEY("train.threads", train.threads, 0, 256, "threads (0 = all cores)"));
    k.push_back(INT_KEY("train.warmup", train.warmup, 0, 100000000, "linear warm-up steps"));
    k.push_back({"train.schedule", "learning-rate schedule after warm-up: cosine | constant",
                 [](RunConfig& c, const std::string& v) {
                     c.train.schedule = choice("train.schedule", v, {"cosine", "constant"});
                 },
                 [](const RunConfig& c) { return quote(c.train.schedule); }});
    k.push_back(FLOAT_KEY("train.min_lr_ratio", train.min_lr_ratio, 0.0, 1.0,
                          "cosine floor as a fraction of lr"));
    k.push_back(FLOAT_KEY("train.weight_decay", train.weight_decay, 0.0, 10.0,
                          "decoupled weight decay (matrices only)"));
    k.push_back(FLOAT_KEY("train.beta1", train.beta1, 0.0, 0.999999, "AdamW beta1"));
    k.push_back(FLOAT_KEY("train.beta2", train.beta2, 0.0, 0.999999, "AdamW beta2"));
    k.push_back(
        FLOAT_KEY("train.clip", train.clip, 0.0, 1e6, "global gradient-norm clip (0 = off)"));
    k.push_back(INT_KEY("train.eval_every", train.eval_every, 0, 100000000,
                        "steps between evaluations (0 = only at the end)"));
    k.push_back(INT_KEY("train.eval_windows", train.eval_windows, 1, 10000000,
                        "windows in the fixed evaluation set"));
    k.push_back({"train.eval_seed", "seed of the evaluation set (shared by all runs by default)",
                 [](RunConfig& c, const std::string& v) {
                     c.train.eval_seed = uint64_t(parse_int("train.eval_seed", v, 0, 1L << 62));
                 },
                 [](const RunConfig& c) { return std::to_string(c.train.eval_seed); }});
    k.push_back(
        INT_KEY("train.log_every", train.log_every, 1, 100000000, "steps between metrics rows"));
    k.push_back(INT_KEY("train.checkpoint_every", train.checkpoint_every, 0, 100000000,
                        "steps between checkpoints (0 = at every evaluation)"));
}

// [diffusion] (model.arch = "uvit", task.name = "fmnist")
void add_diffusion_keys(std::vector<ConfigKey>& k) {
    k.push_back(FLOAT_KEY(
        "diffusion.label_dropout", diffusion.label_dropout, 0.0, 1.0,
        "fraction of training images trained without their class (classifier-free guidance)"));
    k.push_back(INT_KEY("diffusion.sample_steps", diffusion.sample_steps, 1, 1000,
                        "DDIM steps of the evaluation's samples"));
    k.push_back(FLOAT_KEY(
        "diffusion.guidance", diffusion.guidance, 0.0, 100.0,
        "guidance g at evaluation: eps_u + g (eps_c - eps_u); 1 = conditional, no guidance"));
    k.push_back(INT_KEY("diffusion.eval_samples", diffusion.eval_samples, 10, 1000000,
                        "generated images for the FID, an equal share per class"));
    k.push_back(INT_KEY("diffusion.train_images", diffusion.train_images, 0, 60000,
                        "training images used (0 = all)"));
    k.push_back({"diffusion.classifier",
                 "the FID's Fashion-MNIST feature classifier (a file; trained with a fixed seed "
                 "when missing)",
                 [](RunConfig& c, const std::string& v) {
                     c.diffusion.classifier = path_value("diffusion.classifier", v);
                 },
                 [](const RunConfig& c) { return toml_string(c.diffusion.classifier); }});
}

// Every key, section by section, in the order to_toml writes them.
std::vector<ConfigKey> make_keys() {
    std::vector<ConfigKey> k = model_keys();
    add_task_keys(k);
    add_train_keys(k);
    add_diffusion_keys(k);
    return k;
}

}  // namespace

const std::vector<ConfigKey>& config_keys() {
    static const std::vector<ConfigKey> keys = make_keys();
    return keys;
}

static const ConfigKey& find_key(const std::string& key) {
    for (const auto& k : config_keys())
        if (k.name == key) return k;
    const std::string section = key.substr(0, key.find('.'));
    std::string valid;
    for (const auto& k : config_keys())
        if (k.name.rfind(section + ".", 0) == 0) valid += (valid.empty() ? "" : ", ") + k.name;
    if (valid.empty())
        throw Error("unknown configuration key '" + key +
                    "': sections are model, task, train, diffusion");
    throw Error("unknown configuration key '" + key + "'; valid keys in [" + section +
                "]: " + valid);
}

namespace {

// Renamed keys: the old name still reads, with a warning on stderr.
struct KeyAlias {
    const char *old_name, *name, *why;
};
const KeyAlias kAliases[] = {
    {"model.cis_maps", "model.cis_linears", "\"map\" means an attention map"},
};

const KeyAlias* alias_of(const std::string& key) {
    for (const auto& a : kAliases)
        if (key == a.old_name) return &a;
    return nullptr;
}

}  // namespace

std::optional<std::string> renamed_key(const std::string& key) {
    if (const KeyAlias* a = alias_of(key)) return a->name;
    return std::nullopt;
}

namespace {

std::string current_key(const std::string& key) {
    const KeyAlias* a = alias_of(key);
    if (!a) return key;
    std::fprintf(stderr, "warning: %s is now %s (%s); read as %s\n", a->old_name, a->name, a->why,
                 a->name);
    return a->name;
}

}  // namespace

void apply_setting(RunConfig& cfg, const std::string& key, const std::string& value) {
    find_key(current_key(key)).set(cfg, value);
}

void apply_setting(RunConfig& cfg, const std::string& assignment) {
    const size_t eq = assignment.find('=');
    if (eq == std::string::npos)
        throw Error("--set '" + assignment + "' must have the form section.key=value");
    apply_setting(cfg, trim(assignment.substr(0, eq)), assignment.substr(eq + 1));
}

std::vector<std::string> all_task_names() {
    std::vector<std::string> names = task_names();
    names.push_back("fmnist");
    return names;
}

void resolve(RunConfig& cfg, int task_vocab) {
    ModelConfig& m = cfg.model;
    if (m.arch == Arch::uvit || cfg.task.name == "fmnist")
        throw Error(
            "model.arch = 'uvit' goes with task.name = 'fmnist' (a diffusion run; "
            "resolve_diffusion), and only there");
    m.vocab = task_vocab;
    m.context = cfg.train.context;
    const bool attn = m.arch == Arch::transformer || m.arch == Arch::cisformer;
    if (attn) {
        m.attention = resolve_attention("model.attention", cfg.attention, m.layers);
    } else {
        // Attention settings mean nothing to these architectures: refuse rather than ignore.
        const RunConfig defaults;
        if (cfg.attention != defaults.attention)
            throw Error("model.attention = '" + cfg.attention +
                        "' makes no sense for model.arch = '" + arch_name(m.arch) +
                        "', which has no attention; remove the key");
        if (m.pos != defaults.model.pos)
            throw Error("model.pos = '" + pos_name(m.pos) + "' makes no sense for model.arch = '" +
                        arch_name(m.arch) +
                        "' (it sees positions through its structure); remove the key");
        // Keys of the transformer block that these architectures do not have.
        const std::vector<std::string> block_keys{"model.heads", "model.ffn_mult", "model.ffn_act",
                                                  "model.norm", "model.norm_position"};
        for (const auto& k : config_keys())
            if (std::find(block_keys.begin(), block_keys.end(), k.name) != block_keys.end() &&
                k.get(cfg) != k.get(defaults))
                throw Error(k.name + " = " + k.get(cfg) + " makes no sense for model.arch = '" +
                            arch_name(m.arch) +
                            "', which has no attention heads, FFN or norms; remove the key");
        m.attention.clear();
    }
    if (m.arch != Arch::cisformer && m.cis_linears != ModelConfig{}.cis_linears)
        throw Error("model.cis_linears only applies to model.arch = 'cisformer'");
    if (m.arch == Arch::mlp && m.window > m.context)
        throw Error("model.window = " + std::to_string(m.window) +
                    " exceeds train.context = " + std::to_string(m.context));
    if (cfg.train.warmup > cfg.train.steps)
        throw Error("train.warmup = " + std::to_string(cfg.train.warmup) +
                    " exceeds train.steps = " + std::to_string(cfg.train.steps));
    validate(m);
}

std::string to_toml(const RunConfig& cfg) {
    std::string out = "# attnlab run configuration (resolved: every key with its value)\n";
    std::string section;
    for (const auto& k : config_keys()) {
        const std::string sec = k.name.substr(0, k.name.find('.'));
        if (sec != section) out += (section.empty() ? "\n[" : "\n[") + sec + "]\n", section = sec;
        out += k.name.substr(sec.size() + 1) + " = " + k.get(cfg) + "\n";
    }
    return out;
}

std::string describe_keys() {
    const RunConfig defaults;
    std::string out;
    for (const auto& k : config_keys())
        out += k.name + " = " + k.get(defaults) + "\n    " + k.doc + "\n";
    return out;
}

std::string describe_model_keys_markdown() {
    const RunConfig defaults;
    std::string out = "| key | default | meaning |\n|---|---|---|\n";
    for (const auto& k : config_keys()) {
        if (k.name.rfind("model.", 0) != 0) continue;
        std::string doc = k.doc;
        for (size_t i = 0; (i = doc.find('|', i)) != std::string::npos; i += 2)
            doc.replace(i, 1, "\\|");
        out += "| `" + k.name + "` | `" + k.get(defaults) + "` | " + doc + " |\n";
    }
    return out;
}

AdamWConfig adamw_config(const TrainConfig& t) {
    AdamWConfig a;
    a.lr = t.lr;
    a.beta1 = t.beta1, a.beta2 = t.beta2;
    a.weight_decay = t.weight_decay;
    a.warmup = t.warmup;
    a.total_steps = t.steps;
    a.schedule = t.schedule == "constant" ? Schedule::constant : Schedule::cosine;
    a.min_lr_ratio = t.min_lr_ratio;
    a.clip = t.clip;
    return a;
}

}  // namespace attnlab
