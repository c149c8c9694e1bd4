// Linear layers through gemm(); bias sums parallel over output channels, so
// the result does not depend on the thread count's reduction order.
#include "kernels/linear.h"

#include <omp.h>

#include <cstddef>

#include "core/gemm.h"

namespace attnlab {

static void add_bias(float* out, const float* bias, int N, int OC, int ld) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float* o = out + size_t(n) * ld;
        for (int c = 0; c < OC; c++) o[c] += bias[c];
    }
}

// dbias[c] += sum_n dout[n, c]. Each thread owns a slice of columns and walks
// the rows in order (vectorised over columns, fixed summation order).
static void sum_rows(float* dbias, const float* dout, int N, int OC, int ld) {
#pragma omp parallel
    {
        const int nt = omp_get_num_threads(), id = omp_get_thread_num();
        const int c0 = OC * id / nt, c1 = OC * (id + 1) / nt;
        for (int n = 0; n < N; n++) {
            const float* row = dout + size_t(n) * ld;
#pragma omp simd
            for (int c = c0; c < c1; c++) dbias[c] += row[c];
        }
    }
}

void linear_forward(float* out, const float* inp, const float* weight, const float* bias, int N,
                    int IC, int OC) {
    // out = inp @ weight^T
    gemm(false, true, N, OC, IC, 1.0f, inp, IC, weight, IC, 0.0f, out, OC);
    if (bias) add_bias(out, bias, N, OC, OC);
}

void linear_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int IC, int OC) {
    // forward: out = inp @ weight^T + bias
    if (dinp) gemm(false, false, N, IC, OC, 1.0f, dout, OC, weight, IC, 1.0f, dinp, IC);
    gemm(true, false, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dweight, IC);
    if (dbias) sum_rows(dbias, dout, N, OC, OC);
}

// Rows of position t are B rows with stride T*IC: one gemm per position.
void linear_pos_forward(float* out, const float* inp, const float* weight, const float* bias,
                        int B, int T, int IC, int OC) {
    for (int t = 0; t < T; t++) {
        gemm(false, true, B, OC, IC, 1.0f, inp + size_t(t) * IC, T * IC,
             weight + size_t(t) * OC * IC, IC, 0.0f, out + size_t(t) * OC, T * OC);
        if (bias) add_bias(out + size_t(t) * OC, bias + size_t(t) * OC, B, OC, T * OC);
    }
}

void linear_pos_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                         const float* inp, const float* weight, int B, int T, int IC, int OC) {
    for (int t = 0; t < T; t++) {
        const float* dout_t = dout + size_t(t) * OC;
        if (dinp)
            gemm(false, false, B, IC, OC, 1.0f, dout_t, T * OC, weight + size_t(t) * OC * IC, IC,
                 1.0f, dinp + size_t(t) * IC, T * IC);
        gemm(true, false, OC, IC, B, 1.0f, dout_t, T * OC, inp + size_t(t) * IC, T * IC, 1.0f,
             dweight + size_t(t) * OC * IC, IC);
        if (dbias) sum_rows(dbias + size_t(t) * OC, dout_t, B, OC, T * OC);
    }
}

}  // namespace attnlab
