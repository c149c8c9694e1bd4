// Model configuration names, validation and JSON.
#include "model/config.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/option_text.h"

namespace attnlab {

namespace {

template <typename E>
struct Names {
    std::vector<std::pair<E, const char*>> items;
    std::string name(E e) const {
        for (auto& [k, v] : items)
            if (k == e) return v;
        return "?";
    }
    std::string choices() const {
        std::string s;
        for (auto& [k, v] : items) s += (s.empty() ? "" : ", ") + std::string(v);
        return s;
    }
    E from(const std::string& key, const std::string& v) const {
        for (auto& [k, n] : items)
            if (v == n) return k;
        throw Error(key + " = '" + v + "' is not valid; choose one of: " + choices());
    }
};

const Names<Arch> kArch{{{Arch::transformer, "transformer"},
                         {Arch::cisformer, "cisformer"},
                         {Arch::lstm, "lstm"},
                         {Arch::mlp, "mlp"},
                         {Arch::uvit, "uvit"}}};
const Names<Activation> kAct{
    {{Activation::gelu, "gelu"}, {Activation::relu, "relu"}, {Activation::swiglu, "swiglu"}}};
const Names<NormKind> kNorm{{{NormKind::layernorm, "layernorm"}, {NormKind::rmsnorm, "rmsnorm"}}};
const Names<NormPosition> kNormPos{{{NormPosition::pre, "pre"}, {NormPosition::post, "post"}}};
const Names<PosEncoding> kPos{{{PosEncoding::learned, "learned"},
                               {PosEncoding::sinusoidal, "sinusoidal"},
                               {PosEncoding::rope, "rope"},
                               {PosEncoding::alibi, "alibi"},
                               {PosEncoding::none, "none"}}};
const std::vector<std::string> kCisLinears{"qkv", "proj", "fc", "ffn_proj"};

}  // namespace

std::string arch_name(Arch a) {
    return kArch.name(a);
}
std::string activation_name(Activation a) {
    return kAct.name(a);
}
std::string norm_name(NormKind n) {
    return kNorm.name(n);
}
std::string norm_position_name(NormPosition p) {
    return kNormPos.name(p);
}
std::string pos_name(PosEncoding p) {
    return kPos.name(p);
}
Arch arch_from_name(const std::string& k, const std::string& v) {
    return kArch.from(k, v);
}
Activation activation_from_name(const std::string& k, const std::string& v) {
    return kAct.from(k, v);
}
NormKind norm_from_name(const std::string& k, const std::string& v) {
    return kNorm.from(k, v);
}
NormPosition norm_position_from_name(const std::string& k, const std::string& v) {
    return kNormPos.from(k, v);
}
PosEncoding pos_from_name(const std::string& k, const std::string& v) {
    return kPos.from(k, v);
}

std::vector<AttnMap> resolve_attention(const std::string& key, const std::string& spec,
                                       int layers) {
    std::vector<AttnMap> maps;
    if (spec == "cogformer") {
        if (layers < 3)
            throw Error(key +
                        " = 'cogformer' needs at least 3 layers (softmax first and last, "
                        "cog between); model.layers is " +
                        std::to_string(layers));
        maps.assign(size_t(layers), AttnMap::cog);
        maps.front() = maps.back() = AttnMap::softmax;
        return maps;
    }
    size_t start = 0;
    while (start <= spec.size()) {
        size_t end = spec.find(',', start);
        if (end == std::string::npos) end = spec.size();
        std::string name = spec.substr(start, end - start);
        while (!name.empty() && name.front() == ' ') name.erase(name.begin());
        while (!name.empty() && name.back() == ' ') name.pop_back();
        auto m = attention_map_from_name(name);
        if (!m)
            throw Error(key + " = '" + spec + "': unknown attention map '" + name +
                        "'; choose one of: " + attention_map_names() +
                        ", cogformer, or a comma-separated list with one map per layer");
        maps.push_back(*m);
        start = end + 1;
    }
    if (maps.size() == 1) maps.assign(size_t(layers), maps.front());
    if (int(maps.size()) != layers)
        throw Error(key + " = '" + spec + "' lists " + std::to_string(maps.size()) +
                    " maps but model.layers is " + std::to_string(layers) +
                    "; give one map for all layers or exactly one per layer");
    return maps;
}

std::string attention_spec(const std::vector<AttnMap>& maps) {
    std::string s;
    for (auto m : maps) s += (s.empty() ? "" : ",") + std::string(attention_map_info(m).name);
    return s;
}

namespace {

void check_range(const std::string& key, long v, long lo, long hi) {
    if (v < lo || v > hi)
        throw Error(key + " = " + std::to_string(v) + " is out of range: must be " +
                    std::to_string(lo) + ".." + std::to_string(hi));
}

ModelOption plain_option(const std::string& key, const std::string& json, int at,
                         const std::string& doc) {
    ModelOption o;
    o.key = key, o.json = json, o.json_at = at, o.doc = doc;
    return o;
}

// An integer option: model.<key> (JSON key `json` at place `at`) in lo..hi.
ModelOption int_option(const std::string& key, const std::string& json, int at,
                       int ModelConfig::*field, long lo, long hi, const std::string& doc) {
    const std::string name = "model." + (key.empty() ? json : key);
    ModelOption o = plain_option(key, json, at, doc);
    o.field = field, o.lo = lo, o.hi = hi;
    o.set = [=](ModelConfig& c, const std::string& v) {
        c.*field = int(parse_int(name, v, lo, hi));
    };
    o.get = [=](const ModelConfig& c) { return std::to_string(c.*field); };
    return o;
}

// A named option (an enum): its names <-> values through the Names table.
template <typename E>
ModelOption named_option(const std::string& key, int at, E ModelConfig::*field,
                         const Names<E>& names, const std::string& doc) {
    ModelOption o = plain_option(key, key, at, doc);
    o.set = [=, &names](ModelConfig& c, const std::string& v) {
        c.*field = names.from("model." + key, trim(v));
    };
    o.get = [=, &names](const ModelConfig& c) { return quote(names.name(c.*field)); };
    return o;
}

// Values derived from the task and train.*, stored in checkpoints only.
void add_derived_options(std::vector<ModelOption>& o) {
    using M = ModelConfig;
    o.push_back(int_option("", "vocab", 1, &M::vocab, 2, 1 << 20,
                           "vocabulary size V, from the task (uvit: the class count)"));
    o.back().required = true;
    o.push_back(int_option("", "context", 5, &M::context, 1, 8192,
                           "window length T the model is built for, from train.context"));
    o.back().required = true;
    ModelOption att =
        plain_option("", "attention", 11, "the attention map of each layer, from model.attention");
    att.set = [](ModelConfig& c, const std::string& v) {
        c.attention.clear();
        for (const auto& n : split_list(v)) {
            auto m = attention_map_from_name(n);
            if (!m) throw Error("unknown attention map '" + n + "'");
            c.attention.push_back(*m);
        }
    };
    att.get = [](const ModelConfig& c) {
        std::vector<std::string> names;
        for (auto m : c.attention) names.push_back(attention_map_info(m).name);
        return str_list(names);
    };
    o.push_back(att);
    o.push_back(int_option("", "image", 17, &M::image, 1, 4096,
                           "uvit: image side in pixels, from the data set"));
    o.back().stored = [](const ModelConfig& c) { return c.arch == Arch::uvit; };
}

std::vector<ModelOption> make_options() {
    using M = ModelConfig;
    std::vector<ModelOption> o;
    // Keys under [model], in the order `config --list` shows them.
    o.push_back(named_option("arch", 0, &M::arch, kArch,
                             "architecture: transformer | cisformer | lstm | mlp | uvit "
                             "(uvit: with task.name = fmnist)"));
    o.back().required = true;
    o.push_back(int_option("layers", "layers", 3, &M::layers, 1, 256,
                           "number of blocks (LSTM layers, MLP hidden layers)"));
    o.back().required = true;
    o.push_back(int_option("dim", "dim", 2, &M::dim, 2, 8192,
                           "residual width C (LSTM hidden size, MLP embedding size)"));
    o.back().required = true;
    o.push_back(int_option("heads", "heads", 4, &M::heads, 1, 256,
                           "attention heads H (dim must be divisible by heads)"));
    o.push_back(named_option("pos", 10, &M::pos, kPos,
                             "positional encoding: learned | sinusoidal | rope | alibi | none"));
    o.push_back(int_option("ffn_mult", "ffn_mult", 6, &M::ffn_mult, 1, 64,
                           "FFN hidden width as a multiple of dim"));
    o.push_back(named_option("ffn_act", 7, &M::ffn_act, kAct,
                             "FFN non-linearity: gelu (tanh form) | relu | swiglu"));
    o.push_back(named_option("norm", 8, &M::norm, kNorm, "normalisation: layernorm | rmsnorm"));
    o.push_back(named_option("norm_position", 9, &M::norm_position, kNormPos,
                             "block style: pre (x + f(norm(x))) | post (norm(x + f(x)))"));
    // The checkpoint JSON keeps the key cis_maps of attnlab-1 files.
    ModelOption cis =
        plain_option("cis_linears", "cis_maps", 12,
                     "cisformer: which linear maps get per-position weights, a list from qkv, "
                     "proj, fc, ffn_proj (or \"all\")");
    cis.set = [](ModelConfig& c, const std::string& v) {
        if (trim(v) == "all") {
            c.cis_linears = kCisLinears;
            return;
        }
        std::vector<std::string> maps;
        for (const auto& item : split_list(v))
            maps.push_back(choice("model.cis_linears", item, kCisLinears));
        c.cis_linears = maps;
    };
    cis.get = [](const ModelConfig& c) { return str_list(c.cis_linears); };
    o.push_back(cis);
    o.push_back(int_option("cis_rank", "cis_rank", 13, &M::cis_rank, 0, 4096,
                           "cisformer: 0 = full per-position weights W(t); r > 0 = W(t) = W + "
                           "U(t) V(t) of rank r (parameter-matched)"));
    o.back().stored = [](const ModelConfig& c) { return c.cis_rank != 0; };  // absent = 0
    o.push_back(int_option("window", "window", 14, &M::window, 0, 8192,
                           "mlp: tokens seen per prediction (0 = the whole context)"));
    o.push_back(int_option("hidden", "hidden", 15, &M::hidden, 0, 65536,
                           "mlp: hidden width (0 = 4 * dim)"));
    o.push_back(
        int_option("patch", "patch", 16, &M::patch, 2, 4, "uvit: patch side in pixels, 2 or 4"));
    o.back().stored = [](const ModelConfig& c) { return c.arch == Arch::uvit; };
    add_derived_options(o);
    return o;
}

// The architecture-specific rules: U-ViT shapes, attention heads, the MLP window,
// the cisformer's maps.
void validate_uvit(const ModelConfig& c) {
    if (c.layers < 3 || c.layers % 2 == 0)
        throw Error("model.layers = " + std::to_string(c.layers) +
                    " is not valid for model.arch = 'uvit': it needs an odd count >= 3 "
                    "((layers - 1) / 2 in-blocks, a mid-block, as many out-blocks)");
    if (c.dim % 2 != 0)
        throw Error("model.dim = " + std::to_string(c.dim) +
                    " must be even for model.arch = "
                    "'uvit' (the time embedding is [cos, sin] halves)");
    if (c.patch != 2 && c.patch != 4)
        throw Error("model.patch = " + std::to_string(c.patch) + " is not valid: choose 2 or 4");
    if (c.image < c.patch || c.image % c.patch != 0)
        throw Error("image side " + std::to_string(c.image) +
                    " is not a multiple of model.patch = " + std::to_string(c.patch));
    if (c.context != uvit_tokens(c))
        throw Error("uvit: context must be the token count " + std::to_string(uvit_tokens(c)));
    if (c.pos != PosEncoding::learned || c.norm_position != NormPosition::pre)
        throw Error(
            "model.arch = 'uvit' uses learned positions and pre-norm blocks; remove "
            "model.pos and model.norm_position");
}

void validate_attention(const ModelConfig& c) {
    check_range("model.heads", c.heads, 1, c.dim);
    if (c.dim % c.heads != 0)
        throw Error("model.dim = " + std::to_string(c.dim) + " is not divisible by model.heads = " +
                    std::to_string(c.heads) + "; the head size is dim / heads");
    if (c.pos == PosEncoding::rope && (c.dim / c.heads) % 2 != 0)
        throw Error("model.pos = 'rope' needs an even head size; dim / heads = " +
                    std::to_string(c.dim / c.heads));
    if (int(c.attention.size()) != c.layers)
        throw Error("model.attention must give one map per layer (" + std::to_string(c.layers) +
                    "), got " + std::to_string(c.attention.size()));
}

}  // namespace

const std::vector<ModelOption>& model_options() {
    static const std::vector<ModelOption> options = make_options();
    return options;
}

void validate(const ModelConfig& c) {
    for (const auto& o : model_options())
        if (o.field)
            check_range("model." + (o.key.empty() ? o.json : o.key), c.*o.field, o.lo, o.hi);
    const bool attn =
        c.arch == Arch::transformer || c.arch == Arch::cisformer || c.arch == Arch::uvit;
    if (c.arch == Arch::uvit) validate_uvit(c);
    if (attn) validate_attention(c);
    if (!attn && c.pos != PosEncoding::learned && c.pos != PosEncoding::none)
        throw Error("model.pos = '" + pos_name(c.pos) + "' has no meaning for model.arch = '" +
                    arch_name(c.arch) + "', which uses no positional encoding; leave it unset");
    if (c.arch == Arch::mlp) {
        if (c.window > c.context)
            throw Error("model.window = " + std::to_string(c.window) +
                        " is out of range: must be 0.." + std::to_string(c.context) +
                        " (train.context; 0 means the whole context)");
    } else if (c.window != 0 || c.hidden != 0) {
        throw Error(std::string(c.window != 0 ? "model.window" : "model.hidden") +
                    " applies only to model.arch = 'mlp', not '" + arch_name(c.arch) + "'");
    }
    if (c.arch == Arch::cisformer) {
        if (c.cis_linears.empty())
            throw Error("model.cis_linears is empty; list at least one of qkv, proj, fc, ffn_proj");
        for (const auto& m : c.cis_linears)
            if (std::find(kCisLinears.begin(), kCisLinears.end(), m) == kCisLinears.end())
                throw Error("model.cis_linears: unknown linear map '" + m +
                            "'; choose from qkv, proj, fc, ffn_proj");
    } else if (c.cis_rank != 0) {
        throw Error("model.cis_rank applies only to model.arch = 'cisformer', not '" +
                    arch_name(c.arch) + "'");
    }
}

namespace {

// The options the checkpoint JSON stores, in their place there.
std::vector<const ModelOption*> json_options() {
    std::vector<const ModelOption*> out;
    for (const auto& o : model_options())
        if (!o.json.empty()) out.push_back(&o);
    std::sort(out.begin(), out.end(),
              [](const ModelOption* a, const ModelOption* b) { return a->json_at < b->json_at; });
    return out;
}

}  // namespace

std::string to_json(const ModelConfig& c) {
    nlohmann::ordered_json j;
    for (const ModelOption* o : json_options())
        if (!o->stored || o->stored(c)) j[o->json] = nlohmann::ordered_json::parse(o->get(c));
    return j.dump();
}

ModelConfig model_config_from_json(const std::string& text) {
    ModelConfig c;  // a key the JSON leaves out keeps its default
    try {
        const auto j = nlohmann::json::parse(text);
        for (const ModelOption* o : json_options()) {
            if (j.contains(o->json))
                o->set(c, j.at(o->json).dump());
            else if (o->required)
                throw Error("malformed model configuration JSON: '" + o->json + "' is missing");
        }
    } catch (const nlohmann::json::exception& e) {
        throw Error(std::string("malformed model configuration JSON: ") + e.what());
    }
    validate(c);
    return c;
}

}  // namespace attnlab
