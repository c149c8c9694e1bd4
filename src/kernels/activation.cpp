// Element-wise activations; backward adds into or overwrites dinp.
#include "kernels/activation.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "core/profile.h"
#include "kernels/fastmath.h"
#include "kernels/vec.h"

namespace attnlab {

static constexpr float kGeluScale = 0.7978845608028654f;  // sqrt(2 / pi)

namespace {

// GELU and its derivative on 16 lanes (Vec16, vec.h): the explicit vectors keep the
// loops vectorised, which the scalar fast_tanh's clamps and NaN test prevented.
// out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
inline Vec16 gelu(Vec16 x) {
    return 0.5f * x * (1.0f + fast_tanh(kGeluScale * (x + 0.044715f * x * x * x)));
}
inline Vec16 gelu_grad(Vec16 x) {
    const Vec16 th = fast_tanh(kGeluScale * (x + 0.044715f * x * x * x));
    const Vec16 du = kGeluScale * (1.0f + 3.0f * 0.044715f * x * x);
    return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du;
}

constexpr long kVecTask = 4096;  // elements per parallel task of the element-wise loops

// f(i, lanes) over [0, N) in vectors of 16, the tasks shared by the threads (inside a
// parallel region, as in the fused linear epilogues, the calling thread does them all).
template <class F>
void parallel_vectors(long N, F f) {
    const long tasks = (N + kVecTask - 1) / kVecTask;
#pragma omp parallel for schedule(static)
    for (long task = 0; task < tasks; task++) {
        const long i0 = task * kVecTask;
        for_each_vec(std::min(kVecTask, N - i0), [&](long i, int lanes) { f(i0 + i, lanes); });
    }
}

}  // namespace

void gelu_forward(float* out, const float* inp, long N) {
    const ProfileScope prof(KernelFamily::activation);
    parallel_vectors(
        N, [=](long i, int lanes) { store_part(out + i, gelu(load_part(inp + i, lanes)), lanes); });
}

void gelu_backward(float* dinp, const float* dout, const float* inp, long N, GradStore store) {
    const ProfileScope prof(KernelFamily::activation);
    const bool add = store == GradStore::add;
    parallel_vectors(N, [=](long i, int lanes) {
        Vec16 d = gelu_grad(load_part(inp + i, lanes)) * load_part(dout + i, lanes);
        if (add) d += load_part(dinp + i, lanes);
        store_part(dinp + i, d, lanes);
    });
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

// silu(a) = a sig(a), sig(a) = 1 / (1 + exp(-a)), on 16 lanes.
void swiglu_forward(float* out, const float* inp, int N, int F) {
    const ProfileScope prof(KernelFamily::activation);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float* a = inp + size_t(n) * 2 * F;
        const float* g = a + F;
        float* o = out + size_t(n) * F;
        for_each_vec(F, [=](long f, int lanes) {
            const Vec16 av = load_part(a + f, lanes);
            store_part(o + f, av / (1.0f + fast_exp(-av)) * load_part(g + f, lanes), lanes);
        });
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
        for_each_vec(F, [=](long f, int lanes) {
            const Vec16 av = load_part(a + f, lanes), gv = load_part(g + f, lanes);
            const Vec16 dyv = load_part(dy + f, lanes);
            const Vec16 sig = 1.0f / (1.0f + fast_exp(-av));
            Vec16 dav = dyv * gv * sig * (1.0f + av * (1.0f - sig)), dgv = dyv * av * sig;
            if (add) dav += load_part(da + f, lanes), dgv += load_part(dg + f, lanes);
            store_part(da + f, dav, lanes);
            store_part(dg + f, dgv, lanes);
        });
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

void activation_backward(Activation act, float* dinp, const float* dout, const float* inp, int rows,
                         int F, GradStore store) {
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
