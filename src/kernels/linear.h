// Linear layers: y = x W^T + b with W stored [OC, IC] (PyTorch layout), either
// shared by all positions or position-specific (the cisformer's W(t), b(t)).
#pragma once

#include "kernels/activation.h"
#include "kernels/grad_store.h"

namespace attnlab {

// Element-wise work fused into a linear layer: done on each row block of the output
// right after its product, while the block is in cache, instead of as passes of their own.
struct LinearEpilogue {
    // forward: out += residual (N, OC), the residual stream joining the layer's output
    const float* residual = nullptr;
    // forward: act_out = act(out), (N, OC) or (N, OC / 2) for swiglu; out is kept for backward
    float* act_out = nullptr;
    Activation act = Activation::gelu;
};
// Backward of a layer whose input was act(pre): dpre = act'(pre) dinp on each row block of
// dinp (overwriting dpre; dpre may be dinp itself for gelu and relu).
struct ActivationGrad {
    Activation act = Activation::gelu;
    const float* pre = nullptr;  // (N, IC), or (N, 2 IC) for swiglu; nullptr: none
    float* dpre = nullptr;
};

// out (N, OC), inp (N, IC), weight (OC, IC), bias (OC) or nullptr. N = B*T rows.
void linear_forward(float* out, const float* inp, const float* weight, const float* bias, int N,
                    int IC, int OC, const LinearEpilogue& ep = {});
// dinp (= or +=, `store`) dout W; dweight += dout^T inp; dbias += sum_rows dout.
// dinp and dbias may be nullptr (dinp must not be with ag.pre set).
void linear_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int IC, int OC, GradStore store = GradStore::add,
                     const ActivationGrad& ag = {});

// Position-specific: out[b,t] = inp[b,t] W(t)^T + b(t); weight (T, OC, IC), bias (T, OC).
// out (B, T, OC), inp (B, T, IC).
void linear_pos_forward(float* out, const float* inp, const float* weight, const float* bias, int B,
                        int T, int IC, int OC);
void linear_pos_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                         const float* inp, const float* weight, int B, int T, int IC, int OC,
                         GradStore store = GradStore::add);

// Position-specific low-rank correction (the parameter-matched cisformer): adds
// inp[b,t] V(t)^T U(t)^T to out[b,t], so that with a shared linear map before it
// the weight at position t is W(t) = W + U(t) V(t).
// out (B, T, OC) +=, h (B, T, R) = inp V(t)^T kept for backward, inp (B, T, IC),
// u (T, OC, R), v (T, R, IC).
void linear_lowrank_pos_forward(float* out, float* h, const float* inp, const float* u,
                                const float* v, int B, int T, int IC, int OC, int R);
// du += dout^T h; dh = dout U(t) (dh (B, T, R) is scratch); dv += dh^T inp;
// dinp += dh V(t) (always added: the shared map's backward wrote dinp first; may be nullptr).
void linear_lowrank_pos_backward(float* dinp, float* du, float* dv, float* dh, const float* dout,
                                 const float* h, const float* inp, const float* u, const float* v,
                                 int B, int T, int IC, int OC, int R);

}  // namespace attnlab
