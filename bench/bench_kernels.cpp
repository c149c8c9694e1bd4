// Google Benchmark timings of single kernels at the shapes of the reference
// configurations (docs/performance.md): every attention map forward and
// backward (from all_attention_maps(), so a new map is timed without edits),
// the linear layers, norms, activations, the loss and AdamW.
// Run: build/attnlab_microbench [--benchmark_filter=attention] ; threads: ATTNLAB_THREADS.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "core/gemm.h"
#include "core/rng.h"
#include "kernels/activation.h"
#include "kernels/adamw.h"
#include "kernels/attention.h"
#include "kernels/linear.h"
#include "kernels/loss.h"
#include "kernels/norm.h"

using namespace attnlab;

namespace {

std::vector<float> randn(size_t n, double scale, uint64_t seed) {
    Rng rng(seed);
    std::vector<float> v(n);
    for (auto& x : v) x = float(scale * rng.normal());
    return v;
}

// Model FLOPs per second as a counter (the benchmark's time is per iteration).
void set_flops(benchmark::State& state, double flops_per_iteration) {
    state.counters["GFLOP/s"] = benchmark::Counter(
        flops_per_iteration * 1e-9 * double(state.iterations()), benchmark::Counter::kIsRate);
}

// Attention at R1's shape by default: B 64, T 64, C 64, H 4 (range(0) = T).
struct AttentionSetup {
    AttentionShape sh;
    std::vector<float> qkv, out, scores, weights, dout, dqkv, scratch, slopes;
    explicit AttentionSetup(int T, int B = 64, int C = 64, int H = 4) : sh{B, T, C, H} {
        const size_t bt = size_t(B) * T, att = size_t(B) * H * T * T;
        qkv = randn(bt * 3 * C, 1.0, 1), dout = randn(bt * C, 1.0, 2);
        out.resize(bt * C), dqkv.resize(bt * 3 * C), scores.resize(att), weights.resize(att);
        scratch.resize(size_t(get_threads()) * attention_scratch_floats(sh));
    }
    // q k^T and w v over the causal pairs, as bench.cpp counts them
    double forward_flops() const { return 2.0 * 2.0 * sh.B * (sh.T * (sh.T + 1) / 2.0) * sh.C; }
};

// Scores are kept only for the maps whose backward reads them, as in the model.
float* scores_for(AttnMap map, std::vector<float>& scores) {
    return attention_map_needs_scores(map) ? scores.data() : nullptr;
}

void attention_forward_bench(benchmark::State& state, AttnMap map) {
    AttentionSetup s(int(state.range(0)));
    for (auto _ : state) {
        attention_forward(s.out.data(), scores_for(map, s.scores), s.weights.data(),
                          s.scratch.data(), s.qkv.data(), map, nullptr, s.sh);
        benchmark::ClobberMemory();
    }
    set_flops(state, s.forward_flops());
}

void attention_backward_bench(benchmark::State& state, AttnMap map) {
    AttentionSetup s(int(state.range(0)));
    attention_forward(s.out.data(), scores_for(map, s.scores), s.weights.data(), s.scratch.data(),
                      s.qkv.data(), map, nullptr, s.sh);
    for (auto _ : state) {
        attention_backward(s.dqkv.data(), s.scratch.data(), s.dout.data(), s.qkv.data(),
                           s.scores.data(), s.weights.data(), map, s.sh, GradStore::overwrite);
        benchmark::ClobberMemory();
    }
    set_flops(state, 2 * s.forward_flops());
}

// Linear layer of N = 4096 rows (R1's batch), IC -> OC.
void BM_linear_forward(benchmark::State& state) {
    const int N = 4096, IC = int(state.range(0)), OC = int(state.range(1));
    auto x = randn(size_t(N) * IC, 1.0, 3), w = randn(size_t(OC) * IC, 0.02, 4),
         b = randn(OC, 0.02, 5);
    std::vector<float> out(size_t(N) * OC);
    for (auto _ : state) {
        linear_forward(out.data(), x.data(), w.data(), b.data(), N, IC, OC);
        benchmark::ClobberMemory();
    }
    set_flops(state, 2.0 * N * IC * OC);
}

void BM_linear_backward(benchmark::State& state) {
    const int N = 4096, IC = int(state.range(0)), OC = int(state.range(1));
    auto x = randn(size_t(N) * IC, 1.0, 3), w = randn(size_t(OC) * IC, 0.02, 4),
         dout = randn(size_t(N) * OC, 1.0, 6);
    std::vector<float> dx(x.size()), dw(w.size()), db(OC);
    for (auto _ : state) {
        linear_backward(dx.data(), dw.data(), db.data(), dout.data(), x.data(), w.data(), N, IC, OC,
                        GradStore::overwrite);
        benchmark::ClobberMemory();
    }
    set_flops(state, 4.0 * N * IC * OC);
}

void BM_layernorm_forward(benchmark::State& state) {
    const int N = 4096, C = int(state.range(0));
    auto x = randn(size_t(N) * C, 1.0, 7), w = randn(C, 1.0, 8), b = randn(C, 1.0, 9);
    std::vector<float> out(x.size()), mean(N), rstd(N);
    for (auto _ : state) {
        layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C);
        benchmark::ClobberMemory();
    }
}

void BM_layernorm_backward(benchmark::State& state) {
    const int N = 4096, C = int(state.range(0));
    auto x = randn(size_t(N) * C, 1.0, 7), w = randn(C, 1.0, 8), b = randn(C, 1.0, 9),
         dy = randn(x.size(), 1.0, 10);
    std::vector<float> out(x.size()), mean(N), rstd(N), dx(x.size()), dw(C), db(C);
    layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C);
    for (auto _ : state) {
        layernorm_backward(dx.data(), dw.data(), db.data(), dy.data(), x.data(), w.data(),
                           mean.data(), rstd.data(), N, C, GradStore::overwrite);
        benchmark::ClobberMemory();
    }
}

void BM_gelu_forward(benchmark::State& state) {
    const long n = 4096L * 256;
    auto x = randn(size_t(n), 1.0, 11);
    std::vector<float> out(x.size());
    for (auto _ : state) {
        gelu_forward(out.data(), x.data(), n);
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * n);
}

void BM_gelu_backward(benchmark::State& state) {
    const long n = 4096L * 256;
    auto x = randn(size_t(n), 1.0, 11), dy = randn(size_t(n), 1.0, 12);
    std::vector<float> dx(x.size());
    for (auto _ : state) {
        gelu_backward(dx.data(), dy.data(), x.data(), n, GradStore::overwrite);
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * n);
}

void BM_cross_entropy(benchmark::State& state) {
    const int N = 4096, V = 20;
    auto logits = randn(size_t(N) * V, 1.0, 13);
    std::vector<float> probs(logits.size()), rl(N), dl(logits.size());
    std::vector<int32_t> tgt(N);
    std::vector<uint8_t> counted(N, 1), correct(N);
    for (int i = 0; i < N; i++) tgt[size_t(i)] = i % V;
    for (auto _ : state) {
        const LossResult r = cross_entropy_forward(probs.data(), rl.data(), correct.data(),
                                                   logits.data(), tgt.data(), counted.data(), N, V);
        cross_entropy_backward(dl.data(), probs.data(), tgt.data(), counted.data(), r.counted, N, V,
                               GradStore::overwrite);
        benchmark::ClobberMemory();
    }
}

void BM_adamw(benchmark::State& state) {
    const size_t n = size_t(state.range(0));
    auto p = randn(n, 0.02, 14), g = randn(n, 0.01, 15);
    std::vector<float> m(n), v(n);
    AdamWConfig cfg;
    long t = 0;
    for (auto _ : state) {
        adamw_update(p.data(), g.data(), m.data(), v.data(), n, 1e-3f, cfg, ++t, true, 1.0f);
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * long(n));
}

// One benchmark per map and direction, named after the registry.
const bool registered = [] {
    if (const char* t = std::getenv("ATTNLAB_THREADS")) set_threads(std::atoi(t));
    using Bench = void (*)(benchmark::State&, AttnMap);
    const std::pair<const char*, Bench> directions[] = {
        {"attention_forward/", attention_forward_bench},
        {"attention_backward/", attention_backward_bench}};
    for (const auto& m : all_attention_maps())
        for (const auto& [prefix, bench] : directions) {
            const AttnMap map = m.map;
            benchmark::RegisterBenchmark((std::string(prefix) + m.name).c_str(),
                                         [map, bench](benchmark::State& s) { bench(s, map); })
                ->Arg(64)
                ->Arg(256)
                ->Unit(benchmark::kMicrosecond)
                ->UseRealTime();
        }
    return true;
}();

}  // namespace

// R1's linear maps: qkv (64 -> 192), proj (64 -> 64), fc (64 -> 256), ffn proj (256 -> 64).
BENCHMARK(BM_linear_forward)
    ->Args({64, 192})
    ->Args({64, 64})
    ->Args({64, 256})
    ->Args({256, 64})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_linear_backward)
    ->Args({64, 192})
    ->Args({64, 64})
    ->Args({64, 256})
    ->Args({256, 64})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_layernorm_forward)->Arg(64)->Arg(128)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_layernorm_backward)->Arg(64)->Arg(128)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_gelu_forward)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_gelu_backward)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_cross_entropy)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_adamw)->Arg(1 << 17)->Arg(1 << 21)->Unit(benchmark::kMicrosecond)->UseRealTime();

BENCHMARK_MAIN();
