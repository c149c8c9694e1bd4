// Multi-head attention (causal or bidirectional) with interchangeable attention maps. The maps
// live in one registry (all_attention_maps) that tests, benchmarks, sweeps
// and reports loop over, so a new map is added in one place.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/grad_store.h"

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
    // true: query i sees keys j <= i (a decoder); false: every query sees every key
    // (bidirectional, no mask), and ALiBi's bias becomes -m_h |i - j|.
    bool causal = true;
    int hs() const { return C / H; }
};

// Whether the map's backward needs the scores s besides the weights w
// (expressive, quadratic, extensive); the others get by with w (cog: sign(s) =
// sign(w) wherever w != 0, and where w = 0 its gradient is 0 either way).
bool attention_map_needs_scores(AttnMap map);

// Scratch floats one thread of attention_forward / attention_backward uses; pass
// get_threads() times this (the kernels run outside other parallel regions).
size_t attention_scratch_floats(AttentionShape sh);

// Per head: s_ij = q_i . k_j / sqrt(hs) + alibi_ij for the keys j that query i sees
// (A(i) = {j <= i} if sh.causal, else all j < T); w = map(s) row-wise over A(i) (0
// outside it); out_i = sum_j w_ij v_j. alibi_ij = -m_h (i - j) causal, -m_h |i - j|
// bidirectional.
// out (B, T, C); qkv (B, T, 3C); weights (B, H, T, T), kept for backward: the kernel
// writes every j in A(i) and, causal, zeros a few j > i, so entries further right must
// hold zeros on entry (a zeroed buffer stays valid for every call with the same T).
// scores (B, H, T, T), only j in A(i) written: needed if attention_map_needs_scores,
// else may be nullptr. alibi_slopes: (H) or nullptr. map: one map for all heads.
void attention_forward(float* out, float* scores, float* weights, float* scratch, const float* qkv,
                       AttnMap map, const float* alibi_slopes, AttentionShape sh);
// dqkv (B, T, 3C) receives the gradient of q, k, v (added or overwritten, `store`).
void attention_backward(float* dqkv, float* scratch, const float* dout, const float* qkv,
                        const float* scores, const float* weights, AttnMap map, AttentionShape sh,
                        GradStore store = GradStore::add);

// ALiBi slopes m_h = 2^(-8h/H), h = 1..H.
void alibi_slopes(float* slopes, int H);

}  // namespace attnlab
