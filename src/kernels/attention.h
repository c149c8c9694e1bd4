// Multi-head attention (causal or bidirectional) with interchangeable attention
// maps; the maps, one definition each, are in attention_map.h.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/attention_map.h"
#include "kernels/grad_store.h"

namespace attnlab {

struct AttentionShape {
    int B, T, C, H;
    // true: query i sees keys j <= i (a decoder); false: every query sees every key
    // (bidirectional, no mask), and ALiBi's bias becomes -m_h |i - j|.
    bool causal = true;
    int hs() const { return C / H; }
};

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
