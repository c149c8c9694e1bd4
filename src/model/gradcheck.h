// Finite-difference gradient checks of every kernel and of whole models: the
// proof behind `attnlab gradcheck` and the test suite.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace attnlab {

struct GradCheckResult {
    std::string kernel;  // e.g. "layernorm", "attention", "model:transformer/rope"
    std::string map;     // attention map (or "-")
    std::string tensor;  // which input or parameter had the largest error
    double max_err = 0;  // max |analytic - numeric| / max |numeric| over checked entries
    double tol = 0;
    int skipped = 0;  // entries whose difference stencil crossed a jump of the map (cog)
    bool ok() const { return max_err <= tol; }
};

// One registered gradient check, ggml-style: its name, the attention map it
// exercises ("-" for none), its tolerance, and the measurement, which fills in the
// worst relative error, the tensor it was in and the entries skipped at jumps.
struct GradCheck {
    std::string kernel, map;
    double tol = 0;
    std::function<void(GradCheckResult&)> measure;
    GradCheckResult run() const;
};

// The table of every kernel's check, each kernel registered once with its
// tolerance (gradcheck_kernels.cpp): kernels without a map always, the attention
// kernel for each map passing map_filter ("all" or one map name), causal and
// bidirectional, with and without ALiBi.
std::vector<GradCheck> kernel_gradchecks(const std::string& map_filter);
// The whole-model checks: the U-ViT, the transformer's positional encodings and
// block variants and the cisformer per map (and the cogformer preset), the LSTM
// and the MLP under every filter.
std::vector<GradCheck> model_gradchecks(const std::string& map_filter);

struct ModelConfig;
// Checks every parameter gradient of `cfg` (shrunk to vocab 7, context 6, dim 8,
// 2 heads) on a random batch, parameters at scale ~0.3.
GradCheckResult check_model(ModelConfig cfg, const std::string& label, double tol);

// Run the tables (`attnlab gradcheck`, tests/test_gradcheck.cpp); kernels single-threaded.
std::vector<GradCheckResult> run_kernel_gradchecks(const std::string& map_filter);
std::vector<GradCheckResult> run_model_gradchecks(const std::string& map_filter);

}  // namespace attnlab
