// LayerNorm and RMSNorm. Row statistics and input gradients are parallel over
// rows (row sums vectorised: lane-wise partial sums, in an order fixed at
// compile time); weight gradients are parallel over channels, each channel
// summed over the rows in order. Both are deterministic and independent of the
// thread count, and run in one parallel region.
#include "kernels/norm.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "core/profile.h"

namespace attnlab {

namespace {

// Weight gradients are summed over the rows in local accumulators of this many
// channels, then added into the gradient once (a second backward then adds an
// equal sum, as the gemm-based gradients do).
constexpr int kChunk = 64;

// The channels [begin, end) thread `id` of `nt` owns for the weight gradients.
struct Channels {
    int begin, end;
    Channels(int C, int id, int nt) : begin(C * id / nt), end(C * (id + 1) / nt) {}
};

}  // namespace

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int N, int C) {
    const ProfileScope prof(KernelFamily::norm);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float* x = inp + size_t(n) * C;
        float m = 0.0f;
#pragma omp simd reduction(+ : m)
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        float v = 0.0f;
#pragma omp simd reduction(+ : v)
        for (int c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
        v /= C;
        const float s = 1.0f / std::sqrt(v + kNormEps);
        float* o = out + size_t(n) * C;
        for (int c = 0; c < C; c++) o[c] = (x[c] - m) * s * weight[c] + bias[c];
        mean[n] = m, rstd[n] = s;
    }
}

void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                        const float* inp, const float* weight, const float* mean, const float* rstd,
                        int N, int C, GradStore store) {
    const ProfileScope prof(KernelFamily::norm);
    const bool add = store == GradStore::add;
    // forward: xhat = (x - mean) * rstd; out = xhat * weight + bias
    // dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dout * weight
#pragma omp parallel
    {
#pragma omp for schedule(static) nowait
        for (int n = 0; n < N; n++) {
            const float* x = inp + size_t(n) * C;
            const float* dy = dout + size_t(n) * C;
            const float m = mean[n], s = rstd[n];
            float sum_d = 0.0f, sum_dx = 0.0f;
#pragma omp simd reduction(+ : sum_d, sum_dx)
            for (int c = 0; c < C; c++) {
                const float dxhat = dy[c] * weight[c];
                sum_d += dxhat;
                sum_dx += dxhat * (x[c] - m) * s;
            }
            sum_d /= C, sum_dx /= C;
            float* dx = dinp + size_t(n) * C;
            auto grad = [&](int c) {
                return s * (dy[c] * weight[c] - sum_d - (x[c] - m) * s * sum_dx);
            };
            if (add)
                for (int c = 0; c < C; c++) dx[c] += grad(c);
            else
                for (int c = 0; c < C; c++) dx[c] = grad(c);
        }
        const Channels ch(C, omp_get_thread_num(), omp_get_num_threads());
        for (int c0 = ch.begin; c0 < ch.end; c0 += kChunk) {
            const int nc = std::min(kChunk, ch.end - c0);
            float dw[kChunk] = {}, db[kChunk] = {};
            for (int n = 0; n < N; n++) {
                const float* x = inp + size_t(n) * C + c0;
                const float* dy = dout + size_t(n) * C + c0;
                const float m = mean[n], s = rstd[n];
#pragma omp simd
                for (int c = 0; c < nc; c++) {
                    dw[c] += dy[c] * (x[c] - m) * s;
                    db[c] += dy[c];
                }
            }
            for (int c = 0; c < nc; c++) dweight[c0 + c] += dw[c], dbias[c0 + c] += db[c];
        }
    }
}

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int N, int C) {
    const ProfileScope prof(KernelFamily::norm);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float* x = inp + size_t(n) * C;
        float ms = 0.0f;
#pragma omp simd reduction(+ : ms)
        for (int c = 0; c < C; c++) ms += x[c] * x[c];
        const float s = 1.0f / std::sqrt(ms / C + kNormEps);
        float* o = out + size_t(n) * C;
        for (int c = 0; c < C; c++) o[c] = x[c] * s * weight[c];
        rstd[n] = s;
    }
}

void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                      const float* weight, const float* rstd, int N, int C, GradStore store) {
    const ProfileScope prof(KernelFamily::norm);
    const bool add = store == GradStore::add;
    // forward: out = x * rstd * weight, rstd = (mean(x^2) + eps)^(-1/2)
    // dx = rstd * (dxhat - xhat * mean(dxhat * xhat)), xhat = x * rstd, dxhat = dout * weight
#pragma omp parallel
    {
#pragma omp for schedule(static) nowait
        for (int n = 0; n < N; n++) {
            const float* x = inp + size_t(n) * C;
            const float* dy = dout + size_t(n) * C;
            const float s = rstd[n];
            float sum_dx = 0.0f;
#pragma omp simd reduction(+ : sum_dx)
            for (int c = 0; c < C; c++) sum_dx += dy[c] * weight[c] * x[c] * s;
            sum_dx /= C;
            float* dx = dinp + size_t(n) * C;
            auto grad = [&](int c) { return s * (dy[c] * weight[c] - x[c] * s * sum_dx); };
            if (add)
                for (int c = 0; c < C; c++) dx[c] += grad(c);
            else
                for (int c = 0; c < C; c++) dx[c] = grad(c);
        }
        const Channels ch(C, omp_get_thread_num(), omp_get_num_threads());
        for (int c0 = ch.begin; c0 < ch.end; c0 += kChunk) {
            const int nc = std::min(kChunk, ch.end - c0);
            float dw[kChunk] = {};
            for (int n = 0; n < N; n++) {
                const float* x = inp + size_t(n) * C + c0;
                const float* dy = dout + size_t(n) * C + c0;
                const float s = rstd[n];
#pragma omp simd
                for (int c = 0; c < nc; c++) dw[c] += dy[c] * x[c] * s;
            }
            for (int c = 0; c < nc; c++) dweight[c0 + c] += dw[c];
        }
    }
}

void norm_forward(NormKind kind, float* out, float* mean, float* rstd, const float* inp,
                  const float* weight, const float* bias, int N, int C) {
    if (kind == NormKind::layernorm)
        layernorm_forward(out, mean, rstd, inp, weight, bias, N, C);
    else
        rmsnorm_forward(out, rstd, inp, weight, N, C);
}

void norm_backward(NormKind kind, float* dinp, float* dweight, float* dbias, const float* dout,
                   const float* inp, const float* weight, const float* mean, const float* rstd,
                   int N, int C, GradStore store) {
    if (kind == NormKind::layernorm)
        layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C, store);
    else
        rmsnorm_backward(dinp, dweight, dout, inp, weight, rstd, N, C, store);
}

}  // namespace attnlab
