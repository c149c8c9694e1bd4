// LayerNorm and RMSNorm. Row statistics are parallel over rows; weight
// gradients are parallel over channels (fixed summation order, deterministic).
#include "kernels/norm.h"

#include <cmath>
#include <cstddef>

namespace attnlab {

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                       const float* bias, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float* x = inp + size_t(n) * C;
        float m = 0.0f;
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        float v = 0.0f;
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
                        int N, int C) {
    // forward: xhat = (x - mean) * rstd; out = xhat * weight + bias
    // dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dout * weight
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float* x = inp + size_t(n) * C;
        const float* dy = dout + size_t(n) * C;
        float sum_d = 0.0f, sum_dx = 0.0f;
        for (int c = 0; c < C; c++) {
            const float xhat = (x[c] - mean[n]) * rstd[n];
            const float dxhat = dy[c] * weight[c];
            sum_d += dxhat;
            sum_dx += dxhat * xhat;
        }
        sum_d /= C, sum_dx /= C;
        float* dx = dinp + size_t(n) * C;
        for (int c = 0; c < C; c++) {
            const float xhat = (x[c] - mean[n]) * rstd[n];
            dx[c] += rstd[n] * (dy[c] * weight[c] - sum_d - xhat * sum_dx);
        }
    }
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        float dw = 0.0f, db = 0.0f;
        for (int n = 0; n < N; n++) {
            const float xhat = (inp[size_t(n) * C + c] - mean[n]) * rstd[n];
            dw += dout[size_t(n) * C + c] * xhat;
            db += dout[size_t(n) * C + c];
        }
        dweight[c] += dw;
        dbias[c] += db;
    }
}

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float* x = inp + size_t(n) * C;
        float ms = 0.0f;
        for (int c = 0; c < C; c++) ms += x[c] * x[c];
        const float s = 1.0f / std::sqrt(ms / C + kNormEps);
        float* o = out + size_t(n) * C;
        for (int c = 0; c < C; c++) o[c] = x[c] * s * weight[c];
        rstd[n] = s;
    }
}

void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                      const float* weight, const float* rstd, int N, int C) {
    // forward: out = x * rstd * weight, rstd = (mean(x^2) + eps)^(-1/2)
    // dx = rstd * (dxhat - xhat * mean(dxhat * xhat)), xhat = x * rstd, dxhat = dout * weight
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float* x = inp + size_t(n) * C;
        const float* dy = dout + size_t(n) * C;
        float sum_dx = 0.0f;
        for (int c = 0; c < C; c++) sum_dx += dy[c] * weight[c] * x[c] * rstd[n];
        sum_dx /= C;
        float* dx = dinp + size_t(n) * C;
        for (int c = 0; c < C; c++)
            dx[c] += rstd[n] * (dy[c] * weight[c] - x[c] * rstd[n] * sum_dx);
    }
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        float dw = 0.0f;
        for (int n = 0; n < N; n++) dw += dout[size_t(n) * C + c] * inp[size_t(n) * C + c] * rstd[n];
        dweight[c] += dw;
    }
}

}  // namespace attnlab
