// Element-wise activations; backward adds into or overwrites dinp.
#include "kernels/activation.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "core/profile.h"
#include "kernels/fastmath.h"

namespace attnlab {

static constexpr float kGeluScale = 0.7978845608028654f;  // sqrt(2 / pi)

void gelu_forward(float* out, const float* inp, long N) {
    const ProfileScope prof(KernelFamily::activation);
    // out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
#pragma omp parallel for simd schedule(static)
    for (long i = 0; i < N; i++) {
        const float x = inp[i];
        out[i] = 0.5f * x * (1.0f + fast_tanh(kGeluScale * (x + 0.044715f * x * x * x)));
    }
}

void gelu_backward(float* dinp, const float* dout, const float* inp, long N, GradStore store) {
    const ProfileScope prof(KernelFamily::activation);
    auto grad = [dout, inp](long i) {
        const float x = inp[i];
        const float u = kGeluScale * (x + 0.044715f * x * x * x);
        const float th = fast_tanh(u);
        const float du = kGeluScale * (1.0f + 3.0f * 0.044715f * x * x);
        return (0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du) * dout[i];
    };
    // The store test stays outside the loops, so both vectorise.
    if (store == GradStore::add) {
#pragma omp parallel for simd schedule(static)
        for (long i = 0; i < N; i++) dinp[i] += grad(i);
    } else {
#pragma omp parallel for simd schedule(static)
        for (long i = 0; i < N; i++) dinp[i] = grad(i);
    }
}

void relu_forward(float* out, const float* inp, long N) {
    const ProfileScope prof(KernelFamily::activation);
#pragma omp parallel for simd schedule(static)
    for (long i = 0; i < N; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void relu_backward(float* dinp, const float* dout, const float* inp, long N, GradStore store) {
    const ProfileScope prof(KernelFamily::activation);
    if (store == GradStore::add) {
#pragma omp parallel for simd schedule(static)
        for (long i = 0; i < N; i++) dinp[i] += inp[i] > 0.0f ? dout[i] : 0.0f;
    } else {
#pragma omp parallel for simd schedule(static)
        for (long i = 0; i < N; i++) dinp[i] = inp[i] > 0.0f ? dout[i] : 0.0f;
    }
}

void swiglu_forward(float* out, const float* inp, int N, int F) {
    const ProfileScope prof(KernelFamily::activation);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float* a = inp + size_t(n) * 2 * F;
        const float* g = a + F;
        float* o = out + size_t(n) * F;
        for (int f = 0; f < F; f++) o[f] = a[f] / (1.0f + fast_exp(-a[f])) * g[f];
    }
}

void swiglu_backward(float* dinp, const float* dout, const float* inp, int N, int F,
                     GradStore store) {
    const ProfileScope prof(KernelFamily::activation);
    const bool add = store == GradStore::add;
    // out = silu(a) g; silu'(a) = sig(a) (1 + a (1 - sig(a)))
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float* a = inp + size_t(n) * 2 * F;
        const float* g = a + F;
        const float* dy = dout + size_t(n) * F;
        float* da = dinp + size_t(n) * 2 * F;
        float* dg = da + F;
        if (!add) std::fill(da, da + 2 * F, 0.0f);
        for (int f = 0; f < F; f++) {
            const float sig = 1.0f / (1.0f + fast_exp(-a[f]));
            da[f] += dy[f] * g[f] * sig * (1.0f + a[f] * (1.0f - sig));
            dg[f] += dy[f] * a[f] * sig;
        }
    }
}

void activation_forward(Activation act, float* out, const float* inp, int rows, int F) {
    switch (act) {
        case Activation::gelu:
            gelu_forward(out, inp, long(rows) * F);
            break;
        case Activation::relu:
            relu_forward(out, inp, long(rows) * F);
            break;
        case Activation::swiglu:
            swiglu_forward(out, inp, rows, F);
            break;
    }
}

void activation_backward(Activation act, float* dinp, const float* dout, const float* inp,
                         int rows, int F, GradStore store) {
    switch (act) {
        case Activation::gelu:
            gelu_backward(dinp, dout, inp, long(rows) * F, store);
            break;
        case Activation::relu:
            relu_backward(dinp, dout, inp, long(rows) * F, store);
            break;
        case Activation::swiglu:
            swiglu_backward(dinp, dout, inp, rows, F, store);
            break;
    }
}

}  // namespace attnlab
