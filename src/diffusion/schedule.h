// DDPM noise schedule (Ho et al. 2020) and DDIM sampling steps (Song et al.
// 2021): linear betas over 1,000 levels, the forward process
// x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, and the deterministic (eta = 0)
// DDIM update from a predicted noise.
#pragma once
#include <vector>

namespace attnlab {

struct NoiseSchedule {
    int levels = 1000;  // noise levels t = 0 .. levels - 1
    double beta_start = 1e-4, beta_end = 0.02;
    std::vector<double> alpha_bar;  // abar_t = prod_{s <= t} (1 - beta_s)

    // Linear betas from beta_start (t = 0) to beta_end (t = levels - 1).
    static NoiseSchedule linear(int levels = 1000, double beta_start = 1e-4,
                                double beta_end = 0.02);

    // x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, n values.
    void add_noise(float* xt, const float* x0, const float* eps, int t, long n) const;

    // The `steps` noise levels DDIM visits, from high to low: evenly spaced
    // t_i = round(i * (levels - 1) / (steps - 1)), i = steps-1 .. 0 (steps >= 1;
    // steps = 1 is the single level levels - 1).
    std::vector<int> ddim_levels(int steps) const;

    // One DDIM step (eta = 0) from level t to level t_prev (-1: the clean image,
    // abar = 1): x0' = clip((x - sqrt(1 - abar_t) eps) / sqrt(abar_t), -1, 1),
    // x <- sqrt(abar_prev) x0' + sqrt(1 - abar_prev) eps', with eps' recomputed
    // from the clipped x0' so the step stays consistent with it. In place on x.
    void ddim_step(float* x, const float* eps, int t, int t_prev, long n) const;
};

}  // namespace attnlab
