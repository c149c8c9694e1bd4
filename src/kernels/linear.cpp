// Linear layers through matmul_block() (matmul.h), split into fixed blocks that the
// threads share: row blocks of the output (forward, input gradient) and blocks of
// output channels of the weight gradient (each summed over all N rows). A block's
// product is computed by one thread and its result depends only on the block's shape,
// so ours do not depend on the thread count (splitting by thread count would not do:
// OpenBLAS picks kernels by matrix size).
#include "kernels/linear.h"

#include <omp.h>

#include <algorithm>
#include <cstddef>

#include "core/profile.h"
#include "kernels/matmul.h"

namespace attnlab {

namespace {

constexpr int kRowBlock = 256;  // rows per product: as fast as whole-matrix calls here
constexpr int kOutBlock = 128;  // weight-gradient rows (output channels) per product

int blocks(int n, int block) {
    return (n + block - 1) / block;
}

void add_bias(float* out, const float* bias, int rows, int OC, int ld) {
    for (int n = 0; n < rows; n++) {
        float* o = out + size_t(n) * ld;
#pragma omp simd
        for (int c = 0; c < OC; c++) o[c] += bias[c];
    }
}

void add_rows(float* out, const float* residual, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) out[i] += residual[i];
}

// dbias[c] += sum_n dout[n, c] for c in [c0, c1): rows in order into local sums
// (of at most kOutBlock channels), added into dbias once.
void sum_rows(float* dbias, const float* dout, int N, int c0, int c1, int ld) {
    for (int b0 = c0; b0 < c1; b0 += kOutBlock) {
        const int nc = std::min(kOutBlock, c1 - b0);
        float acc[kOutBlock] = {};
        for (int n = 0; n < N; n++) {
            const float* row = dout + size_t(n) * ld + b0;
#pragma omp simd
            for (int c = 0; c < nc; c++) acc[c] += row[c];
        }
        for (int c = 0; c < nc; c++) dbias[b0 + c] += acc[c];
    }
}

}  // namespace

void linear_forward(float* out, const float* inp, const float* weight, const float* bias, int N,
                    int IC, int OC, const LinearEpilogue& ep) {
    const ProfileScope prof(KernelFamily::matmul);
    const int act_width = ep.act == Activation::swiglu ? OC / 2 : OC;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < blocks(N, kRowBlock); blk++) {
        // out = inp @ weight^T (+ bias) (+ residual) for rows [n0, n0 + rows)
        const int n0 = blk * kRowBlock, rows = std::min(kRowBlock, N - n0);
        float* o = out + size_t(n0) * OC;
        matmul_block(false, true, rows, OC, IC, 1.0f, inp + size_t(n0) * IC, IC, weight, IC, 0.0f,
                     o, OC);
        if (bias) add_bias(o, bias, rows, OC, OC);
        if (ep.residual) add_rows(o, ep.residual + size_t(n0) * OC, size_t(rows) * OC);
        if (ep.act_out)  // act_out = act(out), the block still in cache
            activation_forward(ep.act, ep.act_out + size_t(n0) * act_width, o, rows, act_width);
    }
}

void linear_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int N, int IC, int OC, GradStore store,
                     const ActivationGrad& ag) {
    const ProfileScope prof(KernelFamily::matmul);
    const float beta = store == GradStore::add ? 1.0f : 0.0f;
    // forward: out = inp @ weight^T + bias. One list of independent tasks: the
    // weight-gradient blocks (larger, first), then the input-gradient row blocks.
    const int weight_tasks = blocks(OC, kOutBlock), input_tasks = dinp ? blocks(N, kRowBlock) : 0;
#pragma omp parallel for schedule(dynamic, 1)
    for (int task = 0; task < weight_tasks + input_tasks; task++) {
        if (task < weight_tasks) {
            // dweight += dout^T @ inp and dbias += column sums, channels [c0, c0 + rows)
            const int c0 = task * kOutBlock, rows = std::min(kOutBlock, OC - c0);
            matmul_block(true, false, rows, IC, N, 1.0f, dout + c0, OC, inp, IC, 1.0f,
                         dweight + size_t(c0) * IC, IC);
            if (dbias) sum_rows(dbias, dout, N, c0, c0 + rows, OC);
        } else {
            // dinp = dout @ weight for rows [n0, n0 + rows)
            const int n0 = (task - weight_tasks) * kRowBlock, rows = std::min(kRowBlock, N - n0);
            matmul_block(false, false, rows, IC, OC, 1.0f, dout + size_t(n0) * OC, OC, weight, IC,
                         beta, dinp + size_t(n0) * IC, IC);
            if (ag.pre) {  // the layer's input was act(pre): dpre = act'(pre) dinp, in cache
                const int pre_width = ag.act == Activation::swiglu ? 2 * IC : IC;
                activation_backward(ag.act, ag.dpre + size_t(n0) * pre_width,
                                    dinp + size_t(n0) * IC, ag.pre + size_t(n0) * pre_width, rows,
                                    IC, GradStore::overwrite);
            }
        }
    }
}

// Rows of position t are B rows with stride T*IC: one product per position, the
// positions shared among the threads.
void linear_pos_forward(float* out, const float* inp, const float* weight, const float* bias, int B,
                        int T, int IC, int OC) {
    const ProfileScope prof(KernelFamily::matmul);
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        float* o = out + size_t(t) * OC;
        matmul_block(false, true, B, OC, IC, 1.0f, inp + size_t(t) * IC, T * IC,
                     weight + size_t(t) * OC * IC, IC, 0.0f, o, T * OC);
        if (bias) add_bias(o, bias + size_t(t) * OC, B, OC, T * OC);
    }
}

void linear_pos_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                         const float* inp, const float* weight, int B, int T, int IC, int OC,
                         GradStore store) {
    const ProfileScope prof(KernelFamily::matmul);
    const float beta = store == GradStore::add ? 1.0f : 0.0f;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float* dout_t = dout + size_t(t) * OC;
        if (dinp)
            matmul_block(false, false, B, IC, OC, 1.0f, dout_t, T * OC,
                         weight + size_t(t) * OC * IC, IC, beta, dinp + size_t(t) * IC, T * IC);
        matmul_block(true, false, OC, IC, B, 1.0f, dout_t, T * OC, inp + size_t(t) * IC, T * IC,
                     1.0f, dweight + size_t(t) * OC * IC, IC);
        if (dbias) sum_rows(dbias + size_t(t) * OC, dout_t, B, 0, OC, T * OC);
    }
}

// One product pair per position, as linear_pos_*: the B rows of position t have stride T*IC.
void linear_lowrank_pos_forward(float* out, float* h, const float* inp, const float* u,
                                const float* v, int B, int T, int IC, int OC, int R) {
    const ProfileScope prof(KernelFamily::matmul);
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        float* h_t = h + size_t(t) * R;
        // h = inp V(t)^T, then out += h U(t)^T
        matmul_block(false, true, B, R, IC, 1.0f, inp + size_t(t) * IC, T * IC,
                     v + size_t(t) * R * IC, IC, 0.0f, h_t, T * R);
        matmul_block(false, true, B, OC, R, 1.0f, h_t, T * R, u + size_t(t) * OC * R, R, 1.0f,
                     out + size_t(t) * OC, T * OC);
    }
}

void linear_lowrank_pos_backward(float* dinp, float* du, float* dv, float* dh, const float* dout,
                                 const float* h, const float* inp, const float* u, const float* v,
                                 int B, int T, int IC, int OC, int R) {
    const ProfileScope prof(KernelFamily::matmul);
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float* dout_t = dout + size_t(t) * OC;
        const float* h_t = h + size_t(t) * R;
        float* dh_t = dh + size_t(t) * R;
        const float* u_t = u + size_t(t) * OC * R;
        const float* v_t = v + size_t(t) * R * IC;
        // forward: out += h U(t)^T, h = inp V(t)^T
        matmul_block(true, false, OC, R, B, 1.0f, dout_t, T * OC, h_t, T * R, 1.0f,
                     du + size_t(t) * OC * R,
                     R);  // du += dout^T h
        matmul_block(false, false, B, R, OC, 1.0f, dout_t, T * OC, u_t, R, 0.0f, dh_t,
                     T * R);  // dh = dout U
        matmul_block(true, false, R, IC, B, 1.0f, dh_t, T * R, inp + size_t(t) * IC, T * IC, 1.0f,
                     dv + size_t(t) * R * IC, IC);  // dv += dh^T inp
        if (dinp)
            matmul_block(false, false, B, IC, R, 1.0f, dh_t, T * R, v_t, IC, 1.0f,
                         dinp + size_t(t) * IC,
                         T * IC);  // dinp += dh V
    }
}

}  // namespace attnlab
