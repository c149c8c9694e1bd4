// Linear layers: y = x W^T + b with W stored [OC, IC] (PyTorch layout), either
// shared by all positions or position-specific (the cisformer's W(t), b(t)).
#pragma once

#include "kernels/grad_store.h"

namespace attnlab {

// out (N, OC), inp (N, IC), weight (OC, IC), bias (OC) or nullptr. N = B*T rows.
void linear_forward(float* out, const float* inp, const float* weight, const float* bias, int N,
                    int IC, int OC);
// dinp (= or +=, `store`) dout W; dweight += dout^T inp; dbias += sum_rows dout.
// dinp and dbias may be nullptr.
void linear_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int IC, int OC, GradStore store = GradStore::add);

// Position-specific: out[b,t] = inp[b,t] W(t)^T + b(t); weight (T, OC, IC), bias (T, OC).
// out (B, T, OC), inp (B, T, IC).
void linear_pos_forward(float* out, const float* inp, const float* weight, const float* bias, int B,
                        int T, int IC, int OC);
void linear_pos_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                         const float* inp, const float* weight, int B, int T, int IC, int OC,
                         GradStore store = GradStore::add);

}  // namespace attnlab
