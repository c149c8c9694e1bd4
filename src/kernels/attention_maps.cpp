// The built-in attention maps (docs/models.md), one definition each, and the
// registry that holds them and any map registered later.
#include <cmath>

#include "core/error.h"
#include "kernels/attention_map_kinds.h"

namespace attnlab {

namespace {

// softmax: w = exp(s) / sum exp(s)
struct Softmax {
    static constexpr bool is_signed = false, needs_scores = false;
    static Vec16 f(Vec16 s) { return s; }
    static Vec16 df(Vec16) { return splat(1.0f); }
};

// expressive: w = exp(s^2) / sum exp(s^2)
struct Expressive {
    static constexpr bool is_signed = false, needs_scores = true;
    static Vec16 f(Vec16 s) { return s * s; }
    static Vec16 df(Vec16 s) { return 2.0f * s; }
};

// cog: w = sign(s) exp(|s|) / sum exp(|s|). Backward may read w as s: sign(s) =
// sign(w) wherever w != 0, and where w = 0 its gradient is 0 either way.
struct Cog {
    static constexpr bool is_signed = true, needs_scores = false;
    static Vec16 f(Vec16 s) { return vabs(s); }
    static Vec16 df(Vec16 s) { return vsign(s); }
};

// quadratic: w = s^2 / (eps + sum s^2)
struct Quadratic {
    static constexpr float eps = 1e-6f;
    static Vec16 f(Vec16 s) { return s * s; }
    static Vec16 df(Vec16 s) { return 2.0f * s; }
};

// extensive: w = s^2 / (1 + s^2), dw/ds = 2 s / (1 + s^2)^2
struct Extensive {
    static constexpr bool needs_scores = true;
    static Vec16 weight(Vec16 s, float) {
        const Vec16 sq = s * s;
        return sq / (1.0f + sq);
    }
    static Vec16 dweight(Vec16 s, Vec16) {
        const Vec16 den = 1.0f + s * s;
        return 2.0f * s / (den * den);
    }
};

// sigmoid: w = 1 / (1 + exp(-(s - ln T))), dw/ds = w (1 - w)
struct Sigmoid {
    static constexpr bool needs_scores = false;
    static Vec16 weight(Vec16 s, float log_T) { return 1.0f / (1.0f + fast_exp(log_T - s)); }
    static Vec16 dweight(Vec16, Vec16 w) { return w * (1.0f - w); }
};

// In the order of AttnMap's constants (checked when the registry is built).
std::deque<AttnMapInfo> builtin_maps() {
    std::deque<AttnMapInfo> maps{
        exp_normalised_map<Softmax>({"softmax", "exp(s_ij) / sum_l exp(s_il)",
                                     "w_ij (g_ij - sum_l w_il g_il)",
                                     "dot-product attention (DPA)"}),
        exp_normalised_map<Expressive>({"expressive", "exp(s_ij^2) / sum_l exp(s_il^2)",
                                        "2 s_ij w_ij (g_ij - sum_l w_il g_il)",
                                        "expressive attention (EA), Gros"}),
        ratio_map<Quadratic>({"quadratic", "s_ij^2 / (1e-6 + sum_l s_il^2)",
                              "(2 s_ij / Z_i) (g_ij - sum_l w_il g_il), Z_i = 1e-6 + sum_l s_il^2",
                              "(QK)^2 without exp: the other reading of EA"}),
        exp_normalised_map<Cog>({"cog", "sign(s_ij) exp(|s_ij|) / sum_l exp(|s_il|)",
                                 "|w_ij| (g_ij - sign(s_ij) sum_l w_il g_il)",
                                 "Cog attention, Lv et al."}),
        elementwise_map<Extensive>({"extensive", "s_ij^2 / (1 + s_ij^2)",
                                    "g_ij 2 s_ij / (1 + s_ij^2)^2",
                                    "attnlab's own definition (not normalised over keys)"}),
        elementwise_map<Sigmoid>({"sigmoid", "1 / (1 + exp(-(s_ij - ln T)))",
                                  "g_ij w_ij (1 - w_ij)", "sigmoid attention with bias -ln T"}),
    };
    for (size_t i = 0; i < maps.size(); i++) maps[i].map = AttnMap(int(i));
    return maps;
}

std::deque<AttnMapInfo>& registry() {
    static std::deque<AttnMapInfo> maps = [] {
        auto m = builtin_maps();
        const AttnMap constants[] = {AttnMap::softmax, AttnMap::expressive, AttnMap::quadratic,
                                     AttnMap::cog,     AttnMap::extensive,  AttnMap::sigmoid};
        const char* names[] = {"softmax", "expressive", "quadratic", "cog", "extensive", "sigmoid"};
        static_assert(std::size(constants) == std::size(names));
        // Maps after the six originals have no constant; they are found by name.
        if (m.size() < std::size(constants))
            throw Error("internal: the built-in attention maps and AttnMap's constants differ");
        for (size_t i = 0; i < std::size(constants); i++)
            if (std::string_view(m[size_t(constants[i].id())].name) != names[i])
                throw Error("internal: AttnMap::" + std::string(names[i]) +
                            " does not name the built-in map of that name");
        return m;
    }();
    return maps;
}

}  // namespace

const std::deque<AttnMapInfo>& all_attention_maps() {
    return registry();
}

const AttnMapInfo& AttnMap::info() const {
    return registry()[size_t(id_)];
}

const AttnMapInfo& attention_map_info(AttnMap map) {
    return map.info();
}

std::optional<AttnMap> attention_map_from_name(std::string_view name) {
    for (const auto& m : registry())
        if (name == m.name) return m.map;
    return std::nullopt;
}

std::string attention_map_names() {
    std::string s;
    for (const auto& m : registry()) s += (s.empty() ? "" : ", ") + std::string(m.name);
    return s;
}

AttnMap register_attention_map(AttnMapInfo info) {
    auto text = [](const char* p) { return p != nullptr && *p != '\0'; };
    const std::string name = info.name ? info.name : "";
    if (!text(info.name) || !text(info.formula) || !text(info.derivative) || !text(info.source))
        throw Error("attention map '" + name +
                    "': name, formula, derivative and source must be set");
    if (!info.forward_row || !info.forward_block || !info.backward_row || !info.backward_block)
        throw Error("attention map '" + name +
                    "' has no kernels; build it with a kind of kernels/attention_map_kinds.h");
    if (attention_map_from_name(name))
        throw Error("attention map '" + name +
                    "' is already registered; the maps are: " + attention_map_names());
    info.map = AttnMap(int(registry().size()));
    registry().push_back(info);
    return info.map;
}

bool attention_map_needs_scores(AttnMap map) {
    return map.info().needs_scores;
}

void attn_map_forward(AttnMap map, float* w, const float* s, int n, float log_T) {
    float scale;
    map.info().forward_row(w, &scale, s, 0, n, 0, n, log_T);
    for (int j = 0; j < n; j++) w[j] *= scale;
}

void attn_map_backward(AttnMap map, float* ds, const float* g, const float* w, const float* s,
                       int n) {
    map.info().backward_row(ds, g, w, s, 0, n, 0, n);
}

}  // namespace attnlab
