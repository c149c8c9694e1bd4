// Embedding lookup and positional encodings.
#include "kernels/embedding.h"

#include <omp.h>

#include <cmath>
#include <cstddef>

#include "core/profile.h"

namespace attnlab {

void embedding_forward(float* out, const int32_t* tokens, const float* tok_emb,
                       const float* pos_emb, const float* sin_table, int B, int T, int C) {
    const ProfileScope prof(KernelFamily::embedding);
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++) {
        const int t = bt % T;
        const float* e = tok_emb + size_t(tokens[bt]) * C;
        float* o = out + size_t(bt) * C;
        for (int c = 0; c < C; c++) o[c] = e[c];
        if (pos_emb)
            for (int c = 0; c < C; c++) o[c] += pos_emb[size_t(t) * C + c];
        if (sin_table)
            for (int c = 0; c < C; c++) o[c] += sin_table[size_t(t) * C + c];
    }
}

void embedding_backward(float* dtok_emb, float* dpos_emb, const float* dout, const int32_t* tokens,
                        int B, int T, int C, int V) {
    const ProfileScope prof(KernelFamily::embedding);
    // Scatter-add over tokens: each thread owns a slice of the channels and walks
    // the rows in order, so no two threads touch the same element and the
    // summation order is fixed.
#pragma omp parallel
    {
        const int nt = omp_get_num_threads(), id = omp_get_thread_num();
        const int c0 = C * id / nt, c1 = C * (id + 1) / nt;
        for (int bt = 0; bt < B * T; bt++) {
            const float* g = dout + size_t(bt) * C;
            float* e = dtok_emb + size_t(tokens[bt]) * C;
#pragma omp simd
            for (int c = c0; c < c1; c++) e[c] += g[c];
            if (dpos_emb) {
                float* p = dpos_emb + size_t(bt % T) * C;
#pragma omp simd
                for (int c = c0; c < c1; c++) p[c] += g[c];
            }
        }
    }
}

void sinusoidal_table(float* table, int T, int C) {
    for (int t = 0; t < T; t++)
        for (int i = 0; 2 * i < C; i++) {
            const double angle = t / std::pow(10000.0, 2.0 * i / C);
            table[size_t(t) * C + 2 * i] = float(std::sin(angle));
            if (2 * i + 1 < C) table[size_t(t) * C + 2 * i + 1] = float(std::cos(angle));
        }
}

void rope_tables(float* cos_t, float* sin_t, int T, int hs) {
    const int half = hs / 2;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++) {
            const double angle = t * std::pow(10000.0, -2.0 * i / hs);
            cos_t[t * half + i] = float(std::cos(angle));
            sin_t[t * half + i] = float(std::sin(angle));
        }
}

void rope_forward(float* out, const float* qkv, const float* cos_t, const float* sin_t, int B,
                  int T, int C, int H) {
    const ProfileScope prof(KernelFamily::embedding);
    const int hs = C / H, half = hs / 2;
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++) {
        const int t = bt % T;
        const float* x = qkv + size_t(bt) * 3 * C;
        float* y = out + size_t(bt) * 3 * C;
        for (int h = 0; h < 2 * H; h++) {  // the H query heads, then the H key heads
            const float* xh = x + h * hs;
            float* yh = y + h * hs;
            for (int i = 0; i < half; i++) {
                const float c = cos_t[t * half + i], s = sin_t[t * half + i];
                yh[i] = xh[i] * c - xh[i + half] * s;
                yh[i + half] = xh[i] * s + xh[i + half] * c;
            }
            if (hs % 2) yh[hs - 1] = xh[hs - 1];
        }
        for (int c = 2 * C; c < 3 * C; c++) y[c] = x[c];
    }
}

void rope_backward(float* dqkv, const float* dout, const float* cos_t, const float* sin_t, int B,
                   int T, int C, int H, GradStore store) {
    const ProfileScope prof(KernelFamily::embedding);
    const int hs = C / H, half = hs / 2;
    const bool add = store == GradStore::add;
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++) {
        const int t = bt % T;
        const float* dy = dout + size_t(bt) * 3 * C;
        float* dx = dqkv + size_t(bt) * 3 * C;
        for (int h = 0; h < 2 * H; h++) {
            const float* dyh = dy + h * hs;
            float* dxh = dx + h * hs;
            for (int i = 0; i < half; i++) {
                const float c = cos_t[t * half + i], s = sin_t[t * half + i];
                const float g0 = dyh[i] * c + dyh[i + half] * s;
                const float g1 = -dyh[i] * s + dyh[i + half] * c;
                dxh[i] = add ? dxh[i] + g0 : g0;
                dxh[i + half] = add ? dxh[i + half] + g1 : g1;
            }
            if (hs % 2) dxh[hs - 1] = add ? dxh[hs - 1] + dyh[hs - 1] : dyh[hs - 1];
        }
        for (int c = 2 * C; c < 3 * C; c++) dx[c] = add ? dx[c] + dy[c] : dy[c];
    }
}

}  // namespace attnlab
