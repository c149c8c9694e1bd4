// The finite-difference machinery shared by the gradient checks of kernels
// (gradcheck_kernels.cpp) and models (gradcheck.cpp): random inputs, the tensors
// probed and the comparison of analytic and numeric gradients.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/rng.h"
#include "model/gradcheck.h"

namespace attnlab::gradcheck {

using Vec = std::vector<float>;

Vec randn(Rng& rng, size_t n, double scale = 1.0);
double dot(const Vec& a, const Vec& b);

struct Probe {
    std::string name;
    float* x;  // the input being perturbed
    size_t n;
    const float* grad;  // its analytic gradient
};

// Identifies the smooth piece of a piecewise-smooth function the last loss()
// evaluation was on (`cog` weights jump where a score changes sign): a
// difference quotient across a jump measures the jump, not the derivative.
using Piece = std::function<uint64_t()>;
uint64_t sign_pattern(const float* x, size_t n);

// The kernels' difference steps (the models' are in gradcheck.cpp).
inline const std::vector<double> kKernelSteps{1e-2, 1e-3};

// Compares analytic and numeric gradients of `loss` for every probe, perturbing
// at most max_entries entries per probe (spread evenly) and skipping entries
// whose stencil crosses a jump. In float32 the step trades truncation error
// (large h, strongly curved maps) against rounding noise (small h), so each
// entry is differenced at every step in `steps` and the closest estimate
// counts: a wrong gradient disagrees at all of them. Keeps the worst error in r.
void compare(GradCheckResult& r, const std::vector<Probe>& probes,
             const std::function<double()>& loss, std::vector<double> steps,
             size_t max_entries = 400, const Piece& piece = nullptr);

}  // namespace attnlab::gradcheck
