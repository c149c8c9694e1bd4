// The schedule's arithmetic runs in double; images and noise stay float.
#include "diffusion/schedule.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace attnlab {

NoiseSchedule NoiseSchedule::linear(int levels, double beta_start, double beta_end) {
    if (levels < 2) throw Error("a noise schedule needs at least 2 levels");
    NoiseSchedule s;
    s.levels = levels, s.beta_start = beta_start, s.beta_end = beta_end;
    s.alpha_bar.resize(size_t(levels));
    double prod = 1.0;
    for (int t = 0; t < levels; t++) {
        const double beta = beta_start + (beta_end - beta_start) * t / (levels - 1);
        prod *= 1.0 - beta;
        s.alpha_bar[size_t(t)] = prod;
    }
    return s;
}

void NoiseSchedule::add_noise(float* xt, const float* x0, const float* eps, int t, long n) const {
    const float a = float(std::sqrt(alpha_bar[size_t(t)]));
    const float b = float(std::sqrt(1.0 - alpha_bar[size_t(t)]));
    for (long i = 0; i < n; i++) xt[i] = a * x0[i] + b * eps[i];
}

std::vector<int> NoiseSchedule::ddim_levels(int steps) const {
    if (steps < 1 || steps > levels)
        throw Error("sampling steps = " + std::to_string(steps) + " is out of range: must be 1.." +
                    std::to_string(levels));
    std::vector<int> ts;
    for (int i = steps - 1; i >= 0; i--)
        ts.push_back(steps == 1 ? levels - 1
                                : int(std::lround(double(i) * (levels - 1) / (steps - 1))));
    return ts;
}

void NoiseSchedule::ddim_step(float* x, const float* eps, int t, int t_prev, long n) const {
    const double ab = alpha_bar[size_t(t)];
    const double ab_prev = t_prev < 0 ? 1.0 : alpha_bar[size_t(t_prev)];
    const double sa = std::sqrt(ab), sb = std::sqrt(1.0 - ab);
    const double sa_prev = std::sqrt(ab_prev), sb_prev = std::sqrt(1.0 - ab_prev);
    for (long i = 0; i < n; i++) {
        const double x0 = std::clamp((x[i] - sb * eps[i]) / sa, -1.0, 1.0);
        const double e = (x[i] - sa * x0) / sb;  // the noise consistent with the clipped x0
        x[i] = float(sa_prev * x0 + sb_prev * e);
    }
}

}  // namespace attnlab
