// Window stacking: a gather forward; backward gathers too (per source row, so
// no two threads write the same element and the summation order is fixed).
#include "kernels/window.h"

#include <cstddef>
#include <cstring>

#include "core/profile.h"

namespace attnlab {

void window_concat_forward(float* out, const float* inp, int B, int T, int W, int C) {
    const ProfileScope prof(KernelFamily::embedding);
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++) {
        const int t = bt % T;
        float* o = out + size_t(bt) * W * C;
        for (int k = 0; k < W; k++) {
            const int s = t - W + 1 + k;  // source position of block k
            if (s >= 0)
                std::memcpy(o + size_t(k) * C, inp + (size_t(bt) - (t - s)) * C, sizeof(float) * C);
            else
                std::memset(o + size_t(k) * C, 0, sizeof(float) * C);
        }
    }
}

void window_concat_backward(float* dinp, const float* dout, int B, int T, int W, int C) {
    const ProfileScope prof(KernelFamily::embedding);
#pragma omp parallel for schedule(static)
    for (int bs = 0; bs < B * T; bs++) {
        const int s = bs % T;
        float* d = dinp + size_t(bs) * C;
        // Position s is block k of the rows t = s + W - 1 - k (k = W-1 is t = s itself).
        for (int k = W - 1; k >= 0; k--) {
            const int t = s + W - 1 - k;
            if (t >= T) break;
            const float* g = dout + (size_t(bs) + (t - s)) * W * C + size_t(k) * C;
            for (int c = 0; c < C; c++) d[c] += g[c];
        }
    }
}

}  // namespace attnlab
