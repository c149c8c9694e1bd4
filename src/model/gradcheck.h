// Finite-difference gradient checks of every kernel and of whole models: the
// proof behind `attnlab gradcheck` and the test suite.
#pragma once
#include <string>
#include <vector>

namespace attnlab {

struct GradCheckResult {
    std::string kernel;  // e.g. "layernorm", "attention", "model:transformer/rope"
    std::string map;     // attention map (or "-")
    std::string tensor;  // which input or parameter had the largest error
    double max_err = 0;  // max |analytic - numeric| / max |numeric| over checked entries
    double tol = 0;
    int skipped = 0;     // entries whose difference stencil crossed a jump of the map (cog)
    bool ok() const { return max_err <= tol; }
};

struct ModelConfig;
// Checks every parameter gradient of `cfg` (shrunk to vocab 7, context 6, dim 8,
// 2 heads) on a random batch, parameters at scale ~0.3.
GradCheckResult check_model(ModelConfig cfg, const std::string& label, double tol);

// map_filter: "all" or one attention map name (kernels without a map always run).
std::vector<GradCheckResult> run_kernel_gradchecks(const std::string& map_filter);
std::vector<GradCheckResult> run_model_gradchecks(const std::string& map_filter);

}  // namespace attnlab
