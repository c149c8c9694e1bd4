// `attnlab bench`: end-to-end training throughput of a configuration, its model
// FLOP rate against this machine's measured sgemm peak, time per kernel family,
// and peak memory against the analytic size (docs/performance.md).
#pragma once
#include <array>
#include <string>

#include "core/profile.h"
#include "model/config.h"
#include "train/config.h"

namespace attnlab {

struct BenchOptions {
    int steps = 30;       // timed training steps
    int warmup = 3;       // untimed steps first (page faults, caches, OpenMP/BLAS start-up)
    bool profile = true;  // a second pass of `steps` steps with the kernel-family timer on
    int peak_n = 1024;    // the sgemm peak is timed on n x n x n
};

// Matmul FLOPs of one training step (forward + backward) of B windows of length T,
// counted analytically from the configuration (docs/performance.md):
// a product of (M x K) and (K x N) counts 2 M N K; backward counts twice the
// forward (input and weight gradients); attention counts the causal triangle.
struct FlopCount {
    double linear = 0;     // the linear layers (and the LSTM recurrence), forward + backward
    double attention = 0;  // q k^T and w v over j <= i, forward + backward
    double total() const { return linear + attention; }
};
FlopCount training_flops(const ModelConfig& cfg, int B, int T);

// Best GFLOP/s of a row-major sgemm n x n x n through gemm() with the current threads.
double measure_sgemm_gflops(int n);

struct BenchResult {
    std::string description;  // model and data shape in words
    int threads = 0, batch = 0, context = 0;
    int steps = 0, warmup = 0;
    double step_s = 0;      // mean wall time of a timed step
    double step_min_s = 0;  // fastest timed step
    double step_median_s = 0;
    double tokens_per_s = 0;  // batch * context / step_s
    double steps_per_s = 0;
    FlopCount flops;           // per step
    double gflops = 0;         // flops.total() / step_s / 1e9
    double peak_gflops = 0;    // measured sgemm peak, same threads
    double peak_fraction = 0;  // gflops / peak_gflops
    bool profiled = false;
    // Seconds per step by kernel family (thread 0 of the profiled pass), and what
    // the families do not cover (zeroing gradients, the step loop, waiting).
    std::array<double, kKernelFamilies> family_s{};
    double other_s = 0;
    double profiled_step_s = 0;   // mean step of the profiled pass
    size_t peak_rss_bytes = 0;    // getrusage max resident set of the process
    size_t param_bytes = 0;       // parameters + gradients + two AdamW moments
    size_t activation_bytes = 0;  // activations, their gradients and attention buffers
};

// Builds the task, model and optimizer of cfg (train.threads threads, 0 = all cores)
// and times training steps exactly as `attnlab train` runs them.
BenchResult run_bench(RunConfig cfg, const BenchOptions& opt);

std::string format_bench(const BenchResult& r);
std::string bench_json(const BenchResult& r);

}  // namespace attnlab
