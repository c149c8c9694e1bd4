// LSTM layer: the cell's element-wise step in OpenMP loops over the B rows of a
// time step (vectorised over channels with fast_exp), every matrix product through gemm().
#include "kernels/lstm.h"

#include <algorithm>
#include <cstddef>

#include "core/gemm.h"
#include "core/profile.h"
#include "kernels/fastmath.h"
#include "kernels/linear.h"

namespace attnlab {

static inline float sigmoid(float x) {
    return 1.0f / (1.0f + fast_exp(-x));
}

// Step t of the cell: the pre-activations in row (b, t) of gates, with both
// projections already added, become (i, f, g, o) in place; then c, tanh(c), h.
static void cell_forward(float* h, float* c, float* tanh_c, float* gates, int t, int B, int T,
                         int C) {
    const ProfileScope prof(KernelFamily::activation);
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        const size_t row = size_t(b) * T + t;
        float* a = gates + row * 4 * C;
        const float* c_prev = t > 0 ? c + (row - 1) * C : nullptr;
        float* c_t = c + row * C;
        float* th = tanh_c + row * C;
        float* h_t = h + row * C;
#pragma omp simd
        for (int k = 0; k < C; k++) {
            const float i = sigmoid(a[k]), f = sigmoid(a[C + k]);
            const float g = fast_tanh(a[2 * C + k]), o = sigmoid(a[3 * C + k]);
            a[k] = i, a[C + k] = f, a[2 * C + k] = g, a[3 * C + k] = o;
            c_t[k] = i * g + (c_prev ? f * c_prev[k] : 0.0f);
            th[k] = fast_tanh(c_t[k]);
            h_t[k] = o * th[k];
        }
    }
}

// Step t backwards. dh_t is complete (above + recurrent); c_t feeds h_t and c_{t+1}:
//   dc_t = dh_t o (1 - tanh(c_t)^2) + dc_{t+1} f_{t+1}
//   da_i = dc_t g i (1 - i),  da_f = dc_t c_{t-1} f (1 - f),
//   da_g = dc_t i (1 - g^2),  da_o = dh_t tanh(c_t) o (1 - o)
static void cell_backward(float* dgates, float* dc, const float* dh, const float* gates,
                          const float* c, const float* tanh_c, int t, int B, int T, int C) {
    const ProfileScope prof(KernelFamily::activation);
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        const size_t row = size_t(b) * T + t;
        const float* a = gates + row * 4 * C;
        const float* f_next = t + 1 < T ? gates + (row + 1) * 4 * C + C : nullptr;
        const float* dc_next = t + 1 < T ? dc + (row + 1) * C : nullptr;
        const float* c_prev = t > 0 ? c + (row - 1) * C : nullptr;
        const float* th = tanh_c + row * C;
        const float* dh_t = dh + row * C;
        float* dc_t = dc + row * C;
        float* da = dgates + row * 4 * C;
#pragma omp simd
        for (int k = 0; k < C; k++) {
            const float i = a[k], f = a[C + k], g = a[2 * C + k], o = a[3 * C + k];
            const float dct =
                dh_t[k] * o * (1.0f - th[k] * th[k]) + (dc_next ? dc_next[k] * f_next[k] : 0.0f);
            dc_t[k] = dct;
            da[k] = dct * g * i * (1.0f - i);
            da[C + k] = c_prev ? dct * c_prev[k] * f * (1.0f - f) : 0.0f;
            da[2 * C + k] = dct * i * (1.0f - g * g);
            da[3 * C + k] = dh_t[k] * th[k] * o * (1.0f - o);
        }
    }
}

void lstm_forward(float* h, float* c, float* tanh_c, float* gates, const float* x,
                  const float* w_ih, const float* w_hh, const float* bias, int B, int T, int IC,
                  int C) {
    const ProfileScope prof(KernelFamily::matmul);
    const int G = 4 * C;
    // The input projection of all B*T rows at once; the recurrence cannot be batched over t.
    linear_forward(gates, x, w_ih, bias, B * T, IC, G);
    for (int t = 0; t < T; t++) {
        // a_t += h_{t-1} w_hh^T: B rows of stride T*C into rows of stride T*4C (h_{-1} = 0)
        if (t > 0)
            gemm(false, true, B, G, C, 1.0f, h + size_t(t - 1) * C, T * C, w_hh, C, 1.0f,
                 gates + size_t(t) * G, T * G);
        cell_forward(h, c, tanh_c, gates, t, B, T, C);
    }
}

void lstm_backward(float* dx, float* dw_ih, float* dw_hh, float* dbias, float* dgates, float* dc,
                   float* dh, const float* x, const float* h, const float* c, const float* tanh_c,
                   const float* gates, const float* w_ih, const float* w_hh, int B, int T, int IC,
                   int C) {
    const ProfileScope prof(KernelFamily::matmul);
    const int G = 4 * C;
    for (int t = T - 1; t >= 0; t--) {
        cell_backward(dgates, dc, dh, gates, c, tanh_c, t, B, T, C);
        // forward: a_t += h_{t-1} w_hh^T, so dh_{t-1} += da_t w_hh
        if (t > 0)
            gemm(false, false, B, C, G, 1.0f, dgates + size_t(t) * G, T * G, w_hh, C, 1.0f,
                 dh + size_t(t - 1) * C, T * C);
    }
    // forward: a = x w_ih^T + bias over all rows
    linear_backward(dx, dw_ih, dbias, dgates, x, w_ih, B * T, IC, G);
    // dw_hh += sum_{b, t >= 1} da_{b,t}^T h_{b,t-1}. With the t = 0 rows of da zeroed
    // (h_{-1} = 0 gave them no part in it), the pairs (da row n + 1, h row n) over all
    // N = B T rows form exactly that sum: one product, shared among the threads.
    for (int b = 0; b < B; b++) std::fill_n(dgates + size_t(b) * T * G, G, 0.0f);
    linear_backward(nullptr, dw_hh, nullptr, dgates + G, h, w_hh, B * T - 1, C, G);
}

}  // namespace attnlab
