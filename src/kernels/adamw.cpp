// AdamW, the schedule and the gradient norm.
#include "kernels/adamw.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "core/profile.h"

namespace attnlab {

float learning_rate(const AdamWConfig& cfg, long step) {
    if (step < cfg.warmup) return cfg.lr * float(step + 1) / float(cfg.warmup);
    if (cfg.schedule == Schedule::constant) return cfg.lr;
    const double span = std::max(1, cfg.total_steps - cfg.warmup);
    const double p = std::min(1.0, double(step - cfg.warmup) / span);
    const double r = cfg.min_lr_ratio;
    return float(cfg.lr * (r + (1.0 - r) * 0.5 * (1.0 + std::cos(M_PI * p))));
}

double grad_norm(const float* grad, size_t n) {
    const ProfileScope prof(KernelFamily::optimizer);
    // Each thread sums a fixed contiguous slice; the partial sums are added in
    // thread order, so the result depends only on the thread count.
    constexpr int kMaxThreads = 256;
    double partial[kMaxThreads] = {};
    int used = 1;
#pragma omp parallel
    {
        // nt <= 256, see set_threads
        const int nt = omp_get_num_threads(), id = omp_get_thread_num();
        if (id == 0) used = nt;
        const size_t begin = n * id / nt, end = n * (id + 1) / nt;
        double acc = 0.0;
        for (size_t i = begin; i < end; i++) acc += double(grad[i]) * grad[i];
        partial[id] = acc;
    }
    double total = 0.0;
    for (int i = 0; i < used; i++) total += partial[i];
    return std::sqrt(total);
}

void adamw_update(float* param, const float* grad, float* m, float* v, size_t n, float lr,
                  const AdamWConfig& cfg, long t, bool decay, float grad_scale) {
    const ProfileScope prof(KernelFamily::optimizer);
    const float b1 = cfg.beta1, b2 = cfg.beta2;
    const float bc1 = 1.0f - float(std::pow(double(b1), double(t)));
    const float bc2 = 1.0f - float(std::pow(double(b2), double(t)));
    const float shrink = decay ? 1.0f - lr * cfg.weight_decay : 1.0f;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        const float g = grad[i] * grad_scale;
        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        const float mhat = m[i] / bc1, vhat = v[i] / bc2;
        param[i] = param[i] * shrink - lr * mhat / (std::sqrt(vhat) + cfg.eps);
    }
}

}  // namespace attnlab
