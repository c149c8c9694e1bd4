// `attnlab bench`: end-to-end training throughput of a configuration, its model
// FLOP rate against this machine's measured sgemm peak, time per kernel family,
// and peak memory against the analytic size (docs/performance.md).
#pragma once
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "core/profile.h"
#include "model/config.h"
#include "train/config.h"

namespace attnlab {

struct BenchOptions {
    int steps = 30;       // timed training steps
    int warmup = 3;       // untimed steps first (page faults, caches, OpenMP/BLAS start-up)
    bool profile = true;  // a second pass of `steps` steps with the kernel-family timer on
    int peak_n = 2048;    // the sgemm peak is timed on n x n x n
    int peak_rounds = 3;  // peak measurements: before the warm-up, between the passes, at the end
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

// GFLOP/s of each of at least `reps` row-major sgemm n x n x n calls through gemm()
// with the current threads (after one untimed call), and more while under 0.5 s;
// cpu_gflops (if given) gets each call's FLOPs per CPU second of the process.
std::vector<double> measure_sgemm_gflops(int n, int reps = 5,
                                         std::vector<double>* cpu_gflops = nullptr);
// The same n^3 product through attnlab's own kernel (kernels/matmul.h), split as the
// layers split theirs: blocks of 256 rows shared by the threads. Best GFLOP/s of the
// calls; 0 when the build has no kernel of its own or ATTNLAB_GEMM=blas.
double measure_own_gemm_gflops(int n, int reps = 3);

// The sgemm peak of a run: the best of several rounds of calls spread over the run,
// and how far the rounds' bests disagree. A shared machine lowers some rounds; when
// the rounds disagree by more than kPeakMaxSpread, or the run itself beat the peak,
// the peak is not stable and no fraction of it is reported. The peak is OpenBLAS's
// sgemm as the environment configures it; where the layers run attnlab's own kernel
// (kernels/matmul.h), which can be faster, the run is also judged against that kernel's
// speed on the same product, and only beating both means noise.
struct SgemmPeak {
    double best = 0;                 // GFLOP/s, best call of all rounds
    std::vector<double> round_best;  // best call of each round
    int calls = 0;
    double cpu_best = 0;    // GFLOP per CPU second of the process, best call
    double own_best = 0;    // GFLOP/s of attnlab's kernel on the same product (0: not used)
    double spread() const;  // best / (worst round's best) - 1
};
inline constexpr double kPeakMaxSpread = 0.10;

struct BenchResult {
    std::string description;  // model and data shape in words
    int threads = 0, batch = 0, context = 0, vocab = 0;
    bool images = false;  // a U-ViT: context = tokens per image, vocab = classes
    int steps = 0, warmup = 0;
    double step_s = 0;      // mean wall time of a timed step
    double step_min_s = 0;  // fastest timed step
    double step_median_s = 0;
    double tokens_per_s = 0;  // batch * context / step_s
    double steps_per_s = 0;
    double images_per_s = 0;  // U-ViT: batch / step_s
    // CPU seconds of the process per timed step: with one thread, the step's time
    // without the slices other processes took (a loaded machine); with more, it also
    // counts the threads' waiting at barriers.
    double cpu_step_s = 0;
    FlopCount flops;    // per step
    double gflops = 0;  // flops.total() / step_s / 1e9
    int peak_n = 0;     // the peak's sgemm size
    SgemmPeak peak;     // measured sgemm peak, same threads
    // gflops / peak.best when the peak is stable and the fraction at most 1; else empty,
    // and peak_note says why (the machine was too noisy for a stable figure).
    std::optional<double> peak_fraction;
    std::string peak_note;
    // (flops / cpu_step_s) / peak.cpu_best: both rates per CPU second, so the slices
    // other processes take cancel out; the figure for a loaded machine, one thread.
    std::optional<double> cpu_peak_fraction;
    bool profiled = false;
    // Seconds per step by kernel family (thread 0 of the profiled pass), and what
    // the families do not cover (zeroing gradients, the step loop, waiting).
    std::array<double, kKernelFamilies> family_s{};
    double other_s = 0;
    double profiled_step_s = 0;   // mean step of the profiled pass
    size_t peak_rss_bytes = 0;    // resident-set high-water mark of warm-up and timed pass
    size_t params = 0;            // number of parameters
    size_t param_bytes = 0;       // parameters + gradients + two AdamW moments
    size_t activation_bytes = 0;  // activations, their gradients and attention buffers
};

// Sets r.peak_fraction = r.gflops / r.peak.best, or leaves it empty with r.peak_note
// saying why: the rounds of the peak disagree by more than kPeakMaxSpread, or the run
// beat the peak (a fraction above 1 means the peak was measured in a disturbed moment).
void judge_peak(BenchResult& r);

// Builds the task, model and optimizer of cfg (train.threads threads, 0 = all cores)
// and times training steps exactly as `attnlab train` runs them; a U-ViT
// (model.arch = uvit) times its denoising step on a fixed random batch.
BenchResult run_bench(RunConfig cfg, const BenchOptions& opt);

std::string format_bench(const BenchResult& r);
std::string bench_json(const BenchResult& r);

}  // namespace attnlab
