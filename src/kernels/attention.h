// Multi-head causal attention with interchangeable attention maps. The maps
// live in one registry (all_attention_maps) that tests, benchmarks, sweeps
// and reports loop over, so a new map is added in one place.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace attnlab {

enum class AttnMap { softmax, expressive, quadratic, cog, extensive, sigmoid };

struct AttnMapInfo {
    AttnMap map;
    const char* name;
    const char* formula;  // w_ij in terms of the scores s_ij of one row
    bool normalised;      // normalised over the keys of a row?
    const char* source;
};

const std::vector<AttnMapInfo>& all_attention_maps();
const AttnMapInfo& attention_map_info(AttnMap map);
std::optional<AttnMap> attention_map_from_name(std::string_view name);
std::string attention_map_names();  // "softmax, expressive, ..." for error messages

// One row of scores s[0..n) -> weights w[0..n). log_T is ln T for `sigmoid`.
void attn_map_forward(AttnMap map, float* w, const float* s, int n, float log_T);
// dL/ds from g = dL/dw for one row (overwrites ds).
void attn_map_backward(AttnMap map, float* ds, const float* g, const float* w, const float* s,
                       int n);

struct AttentionShape {
    int B, T, C, H;
    int hs() const { return C / H; }
};

// Per head: s_ij = q_i . k_j / sqrt(hs) + alibi_ij for j <= i; w = map(s) row-wise
// (0 for j > i); out_i = sum_j w_ij v_j.
// out (B, T, C); scores, weights (B, H, T, T), kept for backward; qkv (B, T, 3C).
// maps: one map for all heads of this layer. alibi_slopes: (H) or nullptr.
void attention_forward(float* out, float* scores, float* weights, const float* qkv, AttnMap map,
                       const float* alibi_slopes, AttentionShape sh);
// dqkv += gradient of q, k, v; scratch: get_threads() * T * T floats.
void attention_backward(float* dqkv, float* scratch, const float* dout, const float* qkv,
                        const float* scores, const float* weights, AttnMap map,
                        AttentionShape sh);

// ALiBi slopes m_h = 2^(-8h/H), h = 1..H.
void alibi_slopes(float* slopes, int H);

}  // namespace attnlab
