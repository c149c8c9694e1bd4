// Model configuration names, validation and JSON.
#include "model/config.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"

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
const std::vector<std::string> kCisMaps{"qkv", "proj", "fc", "ffn_proj"};

}  // namespace

std::string arch_name(Arch a) { return kArch.name(a); }
std::string activation_name(Activation a) { return kAct.name(a); }
std::string norm_name(NormKind n) { return kNorm.name(n); }
std::string norm_position_name(NormPosition p) { return kNormPos.name(p); }
std::string pos_name(PosEncoding p) { return kPos.name(p); }
Arch arch_from_name(const std::string& k, const std::string& v) { return kArch.from(k, v); }
Activation activation_from_name(const std::string& k, const std::string& v) {
    return kAct.from(k, v);
}
NormKind norm_from_name(const std::string& k, const std::string& v) { return kNorm.from(k, v); }
NormPosition norm_position_from_name(const std::string& k, const std::string& v) {
    return kNormPos.from(k, v);
}
PosEncoding pos_from_name(const std::string& k, const std::string& v) { return kPos.from(k, v); }

std::vector<AttnMap> resolve_attention(const std::string& key, const std::string& spec,
                                       int layers) {
    std::vector<AttnMap> maps;
    if (spec == "cogformer") {
        if (layers < 3)
            throw Error(key + " = 'cogformer' needs at least 3 layers (softmax first and last, "
                              "cog between); model.layers is " + std::to_string(layers));
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

static void check_range(const std::string& key, long v, long lo, long hi) {
    if (v < lo || v > hi)
        throw Error(key + " = " + std::to_string(v) + " is out of range: must be " +
                    std::to_string(lo) + ".." + std::to_string(hi));
}

void validate(const ModelConfig& c) {
    check_range("model.vocab", c.vocab, 2, 1 << 20);
    check_range("train.context", c.context, 1, 8192);
    check_range("model.dim", c.dim, 1, 8192);
    check_range("model.layers", c.layers, 1, 256);
    const bool attn =
        c.arch == Arch::transformer || c.arch == Arch::cisformer || c.arch == Arch::uvit;
    if (c.arch == Arch::uvit) {
        if (c.layers < 3 || c.layers % 2 == 0)
            throw Error("model.layers = " + std::to_string(c.layers) +
                        " is not valid for model.arch = 'uvit': it needs an odd count >= 3 "
                        "((layers - 1) / 2 in-blocks, a mid-block, as many out-blocks)");
        if (c.dim % 2 != 0)
            throw Error("model.dim = " + std::to_string(c.dim) + " must be even for model.arch = "
                        "'uvit' (the time embedding is [cos, sin] halves)");
        if (c.patch != 2 && c.patch != 4)
            throw Error("model.patch = " + std::to_string(c.patch) + " is not valid: choose 2 or 4");
        if (c.image < c.patch || c.image % c.patch != 0)
            throw Error("image side " + std::to_string(c.image) + " is not a multiple of model.patch = " +
                        std::to_string(c.patch));
        if (c.context != uvit_tokens(c))
            throw Error("uvit: context must be the token count " + std::to_string(uvit_tokens(c)));
        if (c.pos != PosEncoding::learned || c.norm_position != NormPosition::pre)
            throw Error("model.arch = 'uvit' uses learned positions and pre-norm blocks; remove "
                        "model.pos and model.norm_position");
    }
    if (attn) {
        check_range("model.heads", c.heads, 1, c.dim);
        if (c.dim % c.heads != 0)
            throw Error("model.dim = " + std::to_string(c.dim) + " is not divisible by model.heads = " +
                        std::to_string(c.heads) + "; the head size is dim / heads");
        if (c.pos == PosEncoding::rope && (c.dim / c.heads) % 2 != 0)
            throw Error("model.pos = 'rope' needs an even head size; dim / heads = " +
                        std::to_string(c.dim / c.heads));
        check_range("model.ffn_mult", c.ffn_mult, 1, 64);
        if (int(c.attention.size()) != c.layers)
            throw Error("model.attention must give one map per layer (" + std::to_string(c.layers) +
                        "), got " + std::to_string(c.attention.size()));
    }
    if (!attn && c.pos != PosEncoding::learned && c.pos != PosEncoding::none)
        throw Error("model.pos = '" + pos_name(c.pos) + "' has no meaning for model.arch = '" +
                    arch_name(c.arch) + "', which uses no positional encoding; leave it unset");
    if (c.arch == Arch::mlp) {
        if (c.window < 0 || c.window > c.context)
            throw Error("model.window = " + std::to_string(c.window) + " is out of range: must be 0.." +
                        std::to_string(c.context) + " (train.context; 0 means the whole context)");
        check_range("model.hidden", c.hidden, 0, 1 << 16);
    } else if (c.window != 0 || c.hidden != 0) {
        throw Error(std::string(c.window != 0 ? "model.window" : "model.hidden") +
                    " applies only to model.arch = 'mlp', not '" + arch_name(c.arch) + "'");
    }
    if (c.arch == Arch::cisformer) {
        if (c.cis_maps.empty())
            throw Error("model.cis_maps is empty; list at least one of qkv, proj, fc, ffn_proj");
        for (const auto& m : c.cis_maps)
            if (std::find(kCisMaps.begin(), kCisMaps.end(), m) == kCisMaps.end())
                throw Error("model.cis_maps: unknown map '" + m +
                            "'; choose from qkv, proj, fc, ffn_proj");
        check_range("model.cis_rank", c.cis_rank, 0, 4096);
    } else if (c.cis_rank != 0) {
        throw Error("model.cis_rank applies only to model.arch = 'cisformer', not '" +
                    arch_name(c.arch) + "'");
    }
}

std::string to_json(const ModelConfig& c) {
    nlohmann::ordered_json j;
    j["arch"] = arch_name(c.arch);
    j["vocab"] = c.vocab;
    j["dim"] = c.dim;
    j["layers"] = c.layers;
    j["heads"] = c.heads;
    j["context"] = c.context;
    j["ffn_mult"] = c.ffn_mult;
    j["ffn_act"] = activation_name(c.ffn_act);
    j["norm"] = norm_name(c.norm);
    j["norm_position"] = norm_position_name(c.norm_position);
    j["pos"] = pos_name(c.pos);
    std::vector<std::string> att;
    for (auto m : c.attention) att.push_back(attention_map_info(m).name);
    j["attention"] = att;
    j["cis_maps"] = c.cis_maps;
    if (c.cis_rank != 0) j["cis_rank"] = c.cis_rank;  // absent = 0, as in older checkpoints
    j["window"] = c.window;
    j["hidden"] = c.hidden;
    if (c.arch == Arch::uvit) j["patch"] = c.patch, j["image"] = c.image;
    return j.dump();
}

ModelConfig model_config_from_json(const std::string& text) {
    ModelConfig c;
    try {
        const auto j = nlohmann::json::parse(text);
        c.arch = arch_from_name("model.arch", j.at("arch").get<std::string>());
        c.vocab = j.at("vocab").get<int>();
        c.dim = j.at("dim").get<int>();
        c.layers = j.at("layers").get<int>();
        c.heads = j.value("heads", 1);
        c.context = j.at("context").get<int>();
        c.ffn_mult = j.value("ffn_mult", 4);
        c.ffn_act = activation_from_name("model.ffn_act", j.value("ffn_act", "gelu"));
        c.norm = norm_from_name("model.norm", j.value("norm", "layernorm"));
        c.norm_position =
            norm_position_from_name("model.norm_position", j.value("norm_position", "pre"));
        c.pos = pos_from_name("model.pos", j.value("pos", "learned"));
        c.attention.clear();
        for (const auto& n : j.value("attention", std::vector<std::string>{})) {
            auto m = attention_map_from_name(n);
            if (!m) throw Error("unknown attention map '" + n + "'");
            c.attention.push_back(*m);
        }
        c.cis_maps = j.value("cis_maps", std::vector<std::string>{"qkv", "proj"});
        c.cis_rank = j.value("cis_rank", 0);
        c.window = j.value("window", 0);
        c.hidden = j.value("hidden", 0);
        c.patch = j.value("patch", 4);
        c.image = j.value("image", 28);
    } catch (const nlohmann::json::exception& e) {
        throw Error(std::string("malformed model configuration JSON: ") + e.what());
    }
    validate(c);
    return c;
}

}  // namespace attnlab
