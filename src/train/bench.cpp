// The training benchmark: warm-up steps, a timed pass, a profiled pass, the
// sgemm peak of this machine and the memory high-water mark.
#include "train/bench.h"

#include <fmt/core.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/gemm.h"
#include "core/profile.h"
#include "core/rng.h"
#include "diffusion/run.h"
#include "diffusion/schedule.h"
#include "kernels/matmul.h"
#include "model/uvit.h"
#include "train/data.h"
#include "train/optimizer.h"

namespace attnlab {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// CPU seconds of all the process's threads: on a shared machine a one-thread run's CPU
// time leaves out the slices the scheduler gave to other processes.
double cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// The process's resident-set high-water mark (VmHWM), which reset_peak_rss() sets back to
// the current resident set, so that the peak measurement's matrices do not count; where
// /proc is missing, getrusage's maximum (which cannot be reset).
size_t peak_rss_bytes() {
    if (std::FILE* f = std::fopen("/proc/self/status", "r")) {
        char line[256];
        size_t kb = 0;
        while (std::fgets(line, sizeof line, f))
            if (std::sscanf(line, "VmHWM: %zu kB", &kb) == 1) break;
        std::fclose(f);
        if (kb > 0) return kb * 1024;
    }
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return size_t(u.ru_maxrss) * 1024;  // Linux reports kilobytes
}

void reset_peak_rss() {
    if (std::FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
        std::fputs("5", f);  // 5: reset the peak resident set size (Linux >= 4.0)
        std::fclose(f);
    }
}

std::string describe(const RunConfig& c) {
    const ModelConfig& m = c.model;
    std::string s = fmt::format("{}, {} layers, dim {}", arch_name(m.arch), m.layers, m.dim);
    if (m.arch == Arch::uvit)
        return s + fmt::format(
                       ", {} heads, FFN {}x, patch {}, {}x{} images ({} tokens), attention {}; "
                       "{} classes",
                       m.heads, m.ffn_mult, m.patch, m.image, m.image, m.context,
                       attention_spec(m.attention), m.vocab);
    if (m.arch == Arch::transformer || m.arch == Arch::cisformer)
        s += fmt::format(", {} heads, FFN {}x {}, attention {}, pos {}", m.heads, m.ffn_mult,
                         activation_name(m.ffn_act), attention_spec(m.attention), pos_name(m.pos));
    return s + fmt::format("; vocab {}", m.vocab);
}

}  // namespace

FlopCount training_flops(const ModelConfig& m, int B, int T) {
    const double N = double(B) * T, C = m.dim, V = m.vocab, L = m.layers;
    FlopCount f;
    double forward = 0;  // linear forward FLOPs; backward adds twice as many
    switch (m.arch) {
        case Arch::transformer:
        case Arch::cisformer: {
            const double F = double(m.ffn_mult) * C;
            const double fc = m.ffn_act == Activation::swiglu ? 2 * F : F;
            // qkv (C -> 3C), proj (C -> C), fc (C -> fc), ffn proj (F -> C)
            forward = L * 2 * N * (C * 3 * C + C * C + C * fc + F * C) + 2 * N * C * V;
            // per layer and head: s = q k^T and out = w v over the T (T + 1) / 2 causal
            // pairs, each pair a dot product of length hs; summed over H heads, hs H = C.
            const double pairs = double(T) * (T + 1) / 2;
            f.attention = 3 * L * 2 * (2 * B * pairs * C);
            break;
        }
        case Arch::lstm:
            // input projection of every position, the recurrence h_{t-1} w_hh^T for t >= 1
            forward = L * (2 * N * C * 4 * C + 2 * double(B) * (T - 1) * C * 4 * C) + 2 * N * C * V;
            break;
        case Arch::uvit: {
            // T = m.context tokens per image (time, class, P patches of pd pixels); the
            // patch embedding (pd -> C) on the P patch tokens, per block qkv, proj, fc,
            // ffn proj, the out-blocks' skip (2C -> C), and the head (C -> pd) on all tokens.
            const double F = double(m.ffn_mult) * C, pd = double(m.patch) * m.patch;
            const double P = double(T) - 2, NP = double(B) * P;
            const double out_blocks = double((m.layers - 1) / 2);
            forward = 2 * NP * pd * C + L * 2 * N * (C * 3 * C + C * C + 2 * C * F) +
                      out_blocks * 2 * N * 2 * C * C + 2 * N * C * pd;
            // bidirectional: all T^2 pairs, two products of length hs, H heads
            f.attention = 3 * L * 2 * (2 * B * double(T) * T * C);
            break;
        }
        case Arch::mlp: {
            const double W = m.window > 0 ? m.window : m.context;
            const double F = m.hidden > 0 ? m.hidden : 4 * C;
            forward = 2 * N * (W * C * F + (L - 1) * F * F + F * V);
            break;
        }
    }
    f.linear = 3 * forward;
    return f;
}

namespace {

// n x n row-major test matrices, the same values in every call.
struct PeakOperands {
    std::vector<float> a, b, c;
    explicit PeakOperands(int n) : a(size_t(n) * n), b(size_t(n) * n), c(size_t(n) * n) {
        for (size_t i = 0; i < a.size(); i++)
            a[i] = float(i % 7) * 0.1f, b[i] = float(i % 5) * 0.1f;
    }
};

std::vector<double> sgemm_gflops(PeakOperands& m, int n, int reps,
                                 std::vector<double>* cpu_gflops) {
    gemm(false, false, n, n, n, 1.0f, m.a.data(), n, m.b.data(), n, 0.0f, m.c.data(), n);
    std::vector<double> gflops;  // (after the warm-up call above)
    const double flop = 2.0 * n * n * double(n);
    const auto t_all = Clock::now();
    for (int rep = 0; rep < 30 && (rep < reps || seconds_since(t_all) < 0.5); rep++) {
        const double cpu0 = cpu_seconds();
        const auto t0 = Clock::now();
        gemm(false, false, n, n, n, 1.0f, m.a.data(), n, m.b.data(), n, 0.0f, m.c.data(), n);
        gflops.push_back(flop / seconds_since(t0) / 1e9);
        if (cpu_gflops) cpu_gflops->push_back(flop / std::max(1e-9, cpu_seconds() - cpu0) / 1e9);
    }
    return gflops;
}

double own_gemm_gflops(PeakOperands& m, int n, int reps) {
    if (std::string(matmul_block_name()) == "OpenBLAS") return 0;
    const int block = 256, blocks = (n + block - 1) / block;
    auto product = [&] {
#pragma omp parallel for schedule(static)
        for (int k = 0; k < blocks; k++) {
            const int i0 = k * block, rows = std::min(block, n - i0);
            matmul_own(false, false, rows, n, n, 1.0f, m.a.data() + size_t(i0) * n, n, m.b.data(),
                       n, 0.0f, m.c.data() + size_t(i0) * n, n);
        }
    };
    product();  // warm-up
    double best = 0;
    const double flop = 2.0 * n * n * double(n);
    for (int rep = 0; rep < reps; rep++) {
        const auto t0 = Clock::now();
        product();
        best = std::max(best, flop / seconds_since(t0) / 1e9);
    }
    return best;
}

}  // namespace

std::vector<double> measure_sgemm_gflops(int n, int reps, std::vector<double>* cpu_gflops) {
    PeakOperands m(n);
    return sgemm_gflops(m, n, reps, cpu_gflops);
}

double measure_own_gemm_gflops(int n, int reps) {
    PeakOperands m(n);
    return own_gemm_gflops(m, n, reps);
}

double SgemmPeak::spread() const {
    if (round_best.empty()) return 0;
    return best / *std::min_element(round_best.begin(), round_best.end()) - 1;
}

namespace {

void add_peak_round(SgemmPeak& p, int n) {
    std::vector<double> cpu;
    PeakOperands m(n);  // one set of matrices for both kernels
    const std::vector<double> g = sgemm_gflops(m, n, 5, &cpu);
    const double round = *std::max_element(g.begin(), g.end());
    p.cpu_best = std::max(p.cpu_best, *std::max_element(cpu.begin(), cpu.end()));
    p.round_best.push_back(round);
    p.best = std::max(p.best, round);
    p.calls += int(g.size());
    p.own_best = std::max(p.own_best, own_gemm_gflops(m, n, 3));
}

}  // namespace

// The fraction of the peak, or why there is none.
void judge_peak(BenchResult& r) {
    const double f = r.gflops / r.peak.best, spread = r.peak.spread();
    r.peak_fraction.reset();
    if (r.gflops > std::max(r.peak.best, r.peak.own_best))
        r.peak_note = fmt::format(
            "the run beat the measured peak ({:.0f}%){}: the machine was too noisy for a "
            "stable peak; measure again on a quieter machine",
            100 * f, r.peak.own_best > 0 ? " and attnlab's own kernel" : "");
    else if (spread > kPeakMaxSpread)
        r.peak_note = fmt::format(
            "the peak's rounds differ by {:.0f}% (more than {:.0f}%): the machine was too noisy "
            "for a stable peak",
            100 * spread, 100 * kPeakMaxSpread);
    else
        r.peak_fraction = f, r.peak_note.clear();
    if (r.cpu_step_s > 0 && r.peak.cpu_best > 0)
        r.cpu_peak_fraction = r.flops.total() / r.cpu_step_s / 1e9 / r.peak.cpu_best;
}

namespace {

// Warm-up, the timed pass, the profiled pass and the peak rounds around them, for any
// training step (the token models' and the U-ViT's); fills the timing fields of r.
template <class Step>
void time_training(BenchResult& r, const BenchOptions& opt, Step&& train_step) {
    const int peak_rounds = std::max(1, opt.peak_rounds);
    for (int i = 0; i < opt.warmup; i++) train_step();
    std::vector<double> times;
    times.reserve(size_t(opt.steps));
    const double cpu0 = cpu_seconds();
    const auto t_pass = Clock::now();
    for (int i = 0; i < opt.steps; i++) {
        const auto t0 = Clock::now();
        train_step();
        times.push_back(seconds_since(t0));
    }
    r.step_s = seconds_since(t_pass) / opt.steps;
    r.cpu_step_s = (cpu_seconds() - cpu0) / opt.steps;
    std::sort(times.begin(), times.end());
    r.step_min_s = times.front();
    r.step_median_s = times[times.size() / 2];
    r.tokens_per_s = double(r.batch) * r.context / r.step_s;
    r.steps_per_s = 1.0 / r.step_s;
    r.peak_rss_bytes = peak_rss_bytes();  // training's memory, before the next peak round
    r.gflops = r.flops.total() / r.step_s / 1e9;
    if (peak_rounds > 2) add_peak_round(r.peak, opt.peak_n);

    if (opt.profile) {
        profile::reset();
        profile::set_enabled(true);
        const auto t0 = Clock::now();
        for (int i = 0; i < opt.steps; i++) train_step();
        r.profiled_step_s = seconds_since(t0) / opt.steps;
        profile::set_enabled(false);
        r.profiled = true;
        double covered = 0;
        for (int f = 0; f < kKernelFamilies; f++) {
            r.family_s[size_t(f)] = profile::seconds(KernelFamily(f)) / opt.steps;
            covered += r.family_s[size_t(f)];
        }
        r.other_s = std::max(0.0, r.profiled_step_s - covered);
    }
    if (peak_rounds > 1) add_peak_round(r.peak, opt.peak_n);
    for (int i = 3; i < peak_rounds; i++) add_peak_round(r.peak, opt.peak_n);
    judge_peak(r);
}

// The U-ViT's denoising step on a fixed batch: random images in [-1, 1], levels,
// classes (some dropped to "no class") and noise targets, made once before timing
// (the data pipeline of `attnlab train` is not timed; it is not the model's cost).
void bench_uvit(BenchResult& r, const RunConfig& cfg, const BenchOptions& opt) {
    const TrainConfig& tc = cfg.train;
    UViT model(cfg.model, tc.batch);
    model.init_params(tc.seed);
    Optimizer optimizer(adamw_config(tc), model.params().size());
    const int B = tc.batch, npx = model.pixels(), K = cfg.model.vocab;
    std::vector<float> x(size_t(B) * npx), eps(x.size());
    std::vector<int32_t> t(static_cast<size_t>(B)), y(static_cast<size_t>(B));
    Rng rng(tc.seed);
    for (size_t i = 0; i < x.size(); i++)
        x[i] = float(2 * rng.uniform() - 1), eps[i] = float(rng.normal());
    const int levels = NoiseSchedule::linear().levels;
    for (int b = 0; b < B; b++) {
        t[size_t(b)] = int32_t(rng.below(uint32_t(levels)));
        y[size_t(b)] = int32_t(rng.below(uint32_t(K + 1)));  // K: the class dropped
    }
    const ImageBatch batch{x.data(), t.data(), y.data(), eps.data(), B};
    time_training(r, opt, [&] {
        model.zero_grad();
        model.forward(batch);
        model.backward(batch);
        optimizer.step(model.table(), model.params(), model.grads());
    });
    r.images_per_s = B / r.step_s;
    r.params = model.params().size();
    r.param_bytes = 4 * model.params().size() * sizeof(float);  // parameters, gradients, m, v
    r.activation_bytes = model.activation_bytes();
}

void bench_tokens(BenchResult& r, const RunConfig& cfg, const Task& task, const BenchOptions& opt) {
    const TrainConfig& tc = cfg.train;
    auto model = make_model(cfg.model, tc.batch);
    model->init_params(tc.seed);
    Optimizer optimizer(adamw_config(tc), model->params().size());
    BatchData data(tc.batch, tc.context);
    const Batch batch = data.batch(tc.batch);
    const uint64_t data_seed = training_data_seed(tc.seed);
    long step = 0;
    time_training(r, opt, [&] {
        {
            const ProfileScope prof(KernelFamily::data);
            data.fill(task, data_seed, uint64_t(step) * uint64_t(tc.batch));
        }
        model->zero_grad();
        model->forward(batch);
        model->backward(batch);
        optimizer.step(*model);
        step++;
    });
    r.params = model->params().size();
    r.param_bytes = 4 * model->param_bytes();  // parameters, gradients, m, v: one layout
    r.activation_bytes = model->activation_bytes();
}

}  // namespace

BenchResult run_bench(RunConfig cfg, const BenchOptions& opt) {
    if (opt.steps < 1) throw Error(fmt::format("--steps = {} must be >= 1", opt.steps));
    if (opt.warmup < 0) throw Error(fmt::format("--warmup = {} must be >= 0", opt.warmup));
    const bool images = is_diffusion(cfg);
    std::unique_ptr<Task> task;
    if (images)
        resolve_diffusion(cfg);
    else
        task = make_task(cfg.task), resolve(cfg, task->vocab());
    const TrainConfig& tc = cfg.train;
    set_threads(tc.threads > 0 ? tc.threads
                               : int(std::max(1u, std::thread::hardware_concurrency())));

    BenchResult r;
    r.description = describe(cfg);
    r.images = images;
    r.threads = get_threads();
    r.batch = tc.batch;
    r.context = images ? cfg.model.context : tc.context;
    r.steps = opt.steps, r.warmup = opt.warmup;
    r.peak_n = opt.peak_n;
    r.vocab = cfg.model.vocab;
    r.flops = training_flops(cfg.model, r.batch, r.context);
    add_peak_round(r.peak, opt.peak_n);  // its matrices are freed again before training
    reset_peak_rss();
    if (images)
        bench_uvit(r, cfg, opt);
    else
        bench_tokens(r, cfg, *task, opt);
    return r;
}

std::string format_bench(const BenchResult& r) {
    const double mb = 1024.0 * 1024.0;
    std::string s = fmt::format("{}\nbatch {} x {} tokens, {} threads\n", r.description, r.batch,
                                r.context, r.threads);
    s += fmt::format(
        "throughput  {:.0f} tokens/s, {:.2f} steps/s  (mean of {} steps after {} warm-up; "
        "step {:.2f} ms, fastest {:.2f} ms, median {:.2f} ms)\n",
        r.tokens_per_s, r.steps_per_s, r.steps, r.warmup, 1e3 * r.step_s, 1e3 * r.step_min_s,
        1e3 * r.step_median_s);
    if (r.images)
        s += fmt::format("            {:.1f} images/s ({} images of {} tokens per step)\n",
                         r.images_per_s, r.batch, r.context);
    s += fmt::format(
        "cpu         {:.2f} ms CPU time per step ({} threads)  ->  {:.0f} tokens per CPU second\n",
        1e3 * r.cpu_step_s, r.threads, double(r.batch) * r.context / r.cpu_step_s);
    s += fmt::format(
        "model       {:.3f} GFLOP per step (linear {:.3f}, attention {:.3f})  ->  {:.1f} GFLOP/s\n",
        r.flops.total() / 1e9, r.flops.linear / 1e9, r.flops.attention / 1e9, r.gflops);
    std::string rounds;
    for (double g : r.peak.round_best)
        rounds += fmt::format("{}{:.1f}", rounds.empty() ? "" : ", ", g);
    s += fmt::format(
        "peak        sgemm {0}^3 {1:.1f} GFLOP/s with {2} threads (best of {3} calls in {4} "
        "rounds around the passes; rounds' bests {5}; spread {6:.1f}%; OpenBLAS {7} kernels)\n",
        r.peak_n, r.peak.best, r.threads, r.peak.calls, r.peak.round_best.size(), rounds,
        100 * r.peak.spread(), blas_kernels());
    if (r.peak.own_best > 0)
        s += fmt::format(
            "            the layers' products run attnlab's own kernel ({}): {:.1f} GFLOP/s on the "
            "same product (best of the rounds), {:.2f}x OpenBLAS\n",
            matmul_block_name(), r.peak.own_best, r.peak.own_best / r.peak.best);
    else
        s += fmt::format("            the layers' products run {}\n", matmul_block_name());
    if (r.peak_fraction) {
        s += fmt::format("            ->  {:.1f}% of peak (OpenBLAS sgemm)\n",
                         100 * *r.peak_fraction);
        if (r.peak.own_best > 0)
            s += fmt::format("            ->  {:.1f}% of attnlab's kernel on the same product\n",
                             100 * r.gflops / r.peak.own_best);
    } else
        s += fmt::format("            ->  no fraction of peak: {}\n", r.peak_note);
    if (r.cpu_peak_fraction)
        s += fmt::format(
            "            ->  {:.1f}% of peak in CPU time ({:.1f} GFLOP per CPU second against "
            "sgemm's best {:.1f})\n",
            100 * *r.cpu_peak_fraction, r.flops.total() / r.cpu_step_s / 1e9, r.peak.cpu_best);
    if (r.profiled) {
        s += fmt::format("time per step by kernel family (profiled pass, step {:.2f} ms):\n",
                         1e3 * r.profiled_step_s);
        for (int f = 0; f < kKernelFamilies; f++)
            s += fmt::format("  {:<11} {:8.3f} ms {:6.1f}%\n", kernel_family_name(KernelFamily(f)),
                             1e3 * r.family_s[size_t(f)],
                             100 * r.family_s[size_t(f)] / r.profiled_step_s);
        s += fmt::format("  {:<11} {:8.3f} ms {:6.1f}%\n", "other", 1e3 * r.other_s,
                         100 * r.other_s / r.profiled_step_s);
    }
    s += fmt::format(
        "memory      peak RSS {:.1f} MiB; analytic {:.1f} MiB = params+grads+moments {:.1f} "
        "+ activations {:.1f}\n",
        r.peak_rss_bytes / mb, (r.param_bytes + r.activation_bytes) / mb, r.param_bytes / mb,
        r.activation_bytes / mb);
    return s;
}

std::string bench_json(const BenchResult& r) {
    nlohmann::ordered_json j;
    j["description"] = r.description;
    j["threads"] = r.threads;
    j["batch"] = r.batch;
    j["context"] = r.context;
    j["vocab"] = r.vocab;
    j["params"] = r.params;
    j["steps"] = r.steps;
    j["warmup"] = r.warmup;
    j["tokens_per_s"] = r.tokens_per_s;
    j["steps_per_s"] = r.steps_per_s;
    if (r.images) j["images_per_s"] = r.images_per_s;
    j["cpu_step_ms"] = 1e3 * r.cpu_step_s;
    j["step_ms"] = 1e3 * r.step_s;
    j["step_min_ms"] = 1e3 * r.step_min_s;
    j["step_median_ms"] = 1e3 * r.step_median_s;
    j["flops_per_step"] = r.flops.total();
    j["linear_flops_per_step"] = r.flops.linear;
    j["attention_flops_per_step"] = r.flops.attention;
    j["gflops"] = r.gflops;
    j["peak_gflops"] = r.peak.best;
    j["peak_n"] = r.peak_n;
    j["peak_round_gflops"] = r.peak.round_best;
    j["peak_calls"] = r.peak.calls;
    j["peak_spread"] = r.peak.spread();
    j["peak_cpu_gflops"] = r.peak.cpu_best;
    j["blas_kernels"] = blas_kernels();
    j["matmul"] = matmul_block_name();
    if (r.peak.own_best > 0) j["own_gemm_gflops"] = r.peak.own_best;
    if (r.cpu_peak_fraction) j["cpu_peak_fraction"] = *r.cpu_peak_fraction;
    if (r.peak_fraction)
        j["peak_fraction"] = *r.peak_fraction;
    else
        j["peak_fraction"] = nullptr, j["peak_note"] = r.peak_note;
    if (r.profiled) {
        nlohmann::ordered_json fam;
        for (int f = 0; f < kKernelFamilies; f++)
            fam[kernel_family_name(KernelFamily(f))] = 1e3 * r.family_s[size_t(f)];
        fam["other"] = 1e3 * r.other_s;
        j["profiled_step_ms"] = 1e3 * r.profiled_step_s;
        j["family_ms"] = fam;
        j["attention_share"] = r.family_s[size_t(KernelFamily::attention)] / r.profiled_step_s;
    }
    j["peak_rss_bytes"] = r.peak_rss_bytes;
    j["param_bytes"] = r.param_bytes;
    j["activation_bytes"] = r.activation_bytes;
    return j.dump(2) + "\n";
}

}  // namespace attnlab
