// Causal window stacking for the MLP: position t sees the vectors of the last W
// positions concatenated, oldest first, with zero vectors before the window's start.
#pragma once

namespace attnlab {

// out (B, T, W*C), inp (B, T, C):
//   out[b, t, k*C + c] = inp[b, t - W + 1 + k, c]  if t - W + 1 + k >= 0, else 0   (k = 0..W-1)
void window_concat_forward(float* out, const float* inp, int B, int T, int W, int C);
// dinp[b, s] += sum_k dout[b, s + W - 1 - k, block k] over k with s + W - 1 - k < T.
void window_concat_backward(float* dinp, const float* dout, int B, int T, int W, int C);

}  // namespace attnlab
