// Attention maps: each one is a single definition (AttnMapInfo) holding what it
// is (name, formula, derivative, source) and its row kernels, generated from its
// math by one of the kinds in attention_map_kinds.h. The registry holds the
// built-in maps (attention_maps.cpp) and any registered later; tests, benchmarks,
// sweeps, reports and the attention kernel all go through it, so a new map is one
// definition plus one registration and nothing else.
#pragma once
#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

namespace attnlab {

struct AttnMapInfo;

// A handle to a registered map (its index in the registry). The built-in maps have
// named constants, AttnMap::softmax etc.; a default handle is softmax.
class AttnMap {
  public:
    constexpr AttnMap() = default;
    constexpr explicit AttnMap(int id) : id_(id) {}
    constexpr int id() const { return id_; }
    const AttnMapInfo& info() const;
    bool operator==(const AttnMap&) const = default;

    static const AttnMap softmax, expressive, quadratic, cog, extensive, sigmoid;

  private:
    int id_ = 0;
};

// Row kernels over a block of R rows of one (batch, head) (R = 1 or kAttnBlockRows):
// row r has its scores at s + r ld and its weights at w + r ld, and sees the keys
// j < n0 + r dn of its chunks over [0, cap) (cap a multiple of 16 or, for R = 1, any
// n0 <= cap); lanes past them are outputs of 0.
// forward writes each row's weights up to a factor, w_r = scale[r] * (stored), so a
// normalisation can ride on a later pass; log_T = ln T (sigmoid's bias).
using MapForwardRows = void (*)(float* w, float* scale, const float* s, size_t ld, int n0, int dn,
                                int cap, float log_T);
// backward: ds = dL/ds from g = dL/dw (ds may alias g), the final weights w, and the
// scores s (the weights again when the map does not need them).
using MapBackwardRows = void (*)(float* ds, const float* g, const float* w, const float* s,
                                 size_t ld, int n0, int dn, int cap);

constexpr int kAttnBlockRows = 8;  // query rows per block of the attention kernel

// Everything about one map. Built by a kind in attention_map_kinds.h, which fills
// the kernels and flags from the map's math; the text fields are the definition's.
struct AttnMapInfo {
    AttnMap map;             // set by register_attention_map
    const char* name;        // the config value, e.g. "softmax"
    const char* formula;     // w_ij in terms of the scores s_ij of one row
    const char* derivative;  // dL/ds_ij in terms of g_ij = dL/dw_ij
    const char* source;
    bool normalised;    // normalised over the keys of a row? (set by the kind)
    bool needs_scores;  // does backward read s? (else it is handed w in its place)
    MapForwardRows forward_row, forward_block;     // R = 1 and R = kAttnBlockRows
    MapBackwardRows backward_row, backward_block;  // R = 1 and R = kAttnBlockRows
};

// The registered maps, built-ins first in the order of AttnMap's constants. A deque:
// references stay valid when a map is registered later.
const std::deque<AttnMapInfo>& all_attention_maps();
const AttnMapInfo& attention_map_info(AttnMap map);
std::optional<AttnMap> attention_map_from_name(std::string_view name);
std::string attention_map_names();  // "softmax, expressive, ..." for error messages

// Adds a map (built with a kind of attention_map_kinds.h) and returns its handle.
// Throws Error on an empty or taken name, or a definition without kernels or text.
// Not thread-safe: register before building models or starting threads.
AttnMap register_attention_map(AttnMapInfo info);

// Whether the map's backward needs the scores s besides the weights w.
bool attention_map_needs_scores(AttnMap map);

// One row of scores s[0..n) -> weights w[0..n). log_T is ln T for `sigmoid`.
void attn_map_forward(AttnMap map, float* w, const float* s, int n, float log_T);
// dL/ds from g = dL/dw for one row (overwrites ds).
void attn_map_backward(AttnMap map, float* ds, const float* g, const float* w, const float* s,
                       int n);

inline constexpr AttnMap AttnMap::softmax{0}, AttnMap::expressive{1}, AttnMap::quadratic{2},
    AttnMap::cog{3}, AttnMap::extensive{4}, AttnMap::sigmoid{5};

}  // namespace attnlab
