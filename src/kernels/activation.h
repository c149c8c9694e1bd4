// FFN non-linearities: GELU (tanh form), ReLU and the SwiGLU gate.
#pragma once
#include <string_view>

#include "kernels/grad_store.h"

namespace attnlab {

enum class Activation { gelu, relu, swiglu };

// gelu/relu: out (N), inp (N), element-wise. Backward: dinp (= or +=, `store`);
// with GradStore::overwrite dinp may be dout itself.
void gelu_forward(float* out, const float* inp, long N);
void gelu_backward(float* dinp, const float* dout, const float* inp, long N,
                   GradStore store = GradStore::add);
void relu_forward(float* out, const float* inp, long N);
void relu_backward(float* dinp, const float* dout, const float* inp, long N,
                   GradStore store = GradStore::add);
// swiglu: inp (N, 2F) = [a | g] per row, out (N, F) = silu(a) * g.
void swiglu_forward(float* out, const float* inp, int N, int F);
void swiglu_backward(float* dinp, const float* dout, const float* inp, int N, int F,
                     GradStore store = GradStore::add);

// Any of the three on `rows` rows whose output has F columns (the input has F, or 2F for
// swiglu): the dispatch the FFN and the fused linear epilogues share.
void activation_forward(Activation act, float* out, const float* inp, int rows, int F);
void activation_backward(Activation act, float* dinp, const float* dout, const float* inp, int rows,
                         int F, GradStore store);

}  // namespace attnlab
