// Token embedding and the positional encodings that act on the residual
// stream (learned, sinusoidal) or on queries and keys (RoPE). ALiBi lives in
// the attention kernel as a score bias.
#pragma once
#include <cstdint>

#include "kernels/grad_store.h"

namespace attnlab {

enum class PosEncoding { learned, sinusoidal, rope, alibi, none };

// out (B, T, C) = tok_emb[tokens] (+ pos_emb[t] if pos_emb, + table[t] if sin_table).
// tokens (B, T), tok_emb (V, C), pos_emb (T, C) or nullptr, sin_table (T, C) or nullptr.
void embedding_forward(float* out, const int32_t* tokens, const float* tok_emb,
                       const float* pos_emb, const float* sin_table, int B, int T, int C);
// dtok_emb[tokens[b,t]] += dout[b,t]; dpos_emb[t] += sum_b dout[b,t] (if dpos_emb).
void embedding_backward(float* dtok_emb, float* dpos_emb, const float* dout, const int32_t* tokens,
                        int B, int T, int C, int V);

// table (T, C): [t, 2i] = sin(t / 10000^(2i/C)), [t, 2i+1] = cos(same).
void sinusoidal_table(float* table, int T, int C);

// RoPE tables (T, hs/2): angle t * 10000^(-2i/hs).
void rope_tables(float* cos_t, float* sin_t, int T, int hs);
// Rotates pairs (x_i, x_{i+hs/2}) of every q and k head in qkv (B, T, 3C) into out
// (B, T, 3C); v is copied unchanged.
void rope_forward(float* out, const float* qkv, const float* cos_t, const float* sin_t, int B,
                  int T, int C, int H);
// dqkv (= or +=, `store`) R^T dout (the rotation by minus the angle); v gradient passes through.
void rope_backward(float* dqkv, const float* dout, const float* cos_t, const float* sin_t, int B,
                   int T, int C, int H, GradStore store = GradStore::add);

}  // namespace attnlab
