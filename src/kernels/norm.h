// LayerNorm and RMSNorm over the channel axis, eps = 1e-5.
#pragma once

#include "kernels/grad_store.h"

namespace attnlab {

constexpr float kNormEps = 1e-5f;

// out (N, C), mean (N), rstd (N), inp (N, C), weight (C), bias (C).
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int N, int C);
// dinp (= or +=, `store`) the input gradient; dweight, dbias += their gradients.
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                        const float* inp, const float* weight, const float* mean, const float* rstd,
                        int N, int C, GradStore store = GradStore::add);

// out = inp * rstd * weight, rstd = 1 / sqrt(mean(inp^2) + eps).
void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int N, int C);
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                      const float* weight, const float* rstd, int N, int C,
                      GradStore store = GradStore::add);

// The normalisation a model chooses (model.norm), dispatched: LayerNorm uses mean,
// weight and bias; RMSNorm only rstd and weight (mean and bias may be null).
enum class NormKind { layernorm, rmsnorm };
void norm_forward(NormKind kind, float* out, float* mean, float* rstd, const float* inp,
                  const float* weight, const float* bias, int N, int C);
void norm_backward(NormKind kind, float* dinp, float* dweight, float* dbias, const float* dout,
                   const float* inp, const float* weight, const float* mean, const float* rstd,
                   int N, int C, GradStore store = GradStore::add);

}  // namespace attnlab
