// `attnlab bench`: the FLOP count against the hand count of docs/performance.md,
// and a short benchmark run whose figures are consistent with each other.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/profile.h"
#include "train/bench.h"
#include "train/config.h"
#include "train/recipes.h"

using namespace attnlab;

TEST(Bench, FlopCountOfTheReferenceConfigurations) {
    ModelConfig m;  // R1: 2 layers, d 64, FFN 4x, vocab 20, batch 64 x 64
    m.layers = 2, m.dim = 64, m.heads = 4, m.vocab = 20, m.context = 64;
    const double N = 64.0 * 64, C = 64;
    const double linear =
        3 * (2 * 2 * N * (C * 3 * C + C * C + C * 4 * C + 4 * C * C) + 2 * N * C * 20);
    const double attention = 3 * 2 * 4 * 64 * (64 * 65 / 2.0) * C;
    const FlopCount f = training_flops(m, 64, 64);
    EXPECT_DOUBLE_EQ(f.linear, linear);
    EXPECT_DOUBLE_EQ(f.attention, attention);
    EXPECT_NEAR(f.total() / 1e9, 2.652, 0.001);
    m.arch = Arch::cisformer;  // position-specific weights: the same arithmetic
    EXPECT_DOUBLE_EQ(training_flops(m, 64, 64).total(), f.total());
    m.arch = Arch::lstm, m.dim = 128;  // R4
    EXPECT_NEAR(training_flops(m, 64, 64).total() / 1e9, 6.455, 0.001);
}

TEST(Bench, FlopCountOfTheUViT) {
    ModelConfig m;  // uvit-fmnist: 7 blocks (3 in, mid, 3 out), d 96, FFN 2x, patch 4 of 28 x 28
    m.arch = Arch::uvit, m.layers = 7, m.dim = 96, m.heads = 4, m.ffn_mult = 2, m.patch = 4;
    m.image = 28, m.vocab = 10, m.context = 2 + 7 * 7;
    const double B = 64, T = 51, N = B * T, C = 96, F = 192;
    const double patch = 2 * B * 49 * 16 * C, head = 2 * N * C * 16;
    const double block = 2 * N * (3 * C * C + C * C + C * F + F * C), skip = 2 * N * 2 * C * C;
    const double attention = 3 * 7 * 2 * 2 * B * T * T * C;  // bidirectional: all T^2 pairs
    const FlopCount f = training_flops(m, 64, 51);
    EXPECT_DOUBLE_EQ(f.linear, 3 * (patch + 7 * block + 3 * skip + head));
    EXPECT_DOUBLE_EQ(f.attention, attention);
    EXPECT_NEAR(f.total() / 1e9, 12.591, 0.001);
}

TEST(Bench, ShortUViTRunCountsImages) {
    RunConfig cfg;
    apply_toml(cfg, find_recipe("uvit-fmnist-quick").toml, "uvit-fmnist-quick");
    apply_setting(cfg, "model.dim=32");
    apply_setting(cfg, "model.layers=3");
    apply_setting(cfg, "train.batch=4");
    apply_setting(cfg, "train.threads=1");
    BenchOptions opt;
    opt.steps = 2, opt.warmup = 1, opt.peak_n = 128, opt.profile = false;
    const BenchResult r = run_bench(cfg, opt);
    EXPECT_TRUE(r.images);
    EXPECT_EQ(r.context, 2 + 7 * 7);  // time, class and 49 patch tokens per image
    EXPECT_NEAR(r.images_per_s, 4 / r.step_s, 1e-9 * r.images_per_s);
    EXPECT_NEAR(r.tokens_per_s, 51 * r.images_per_s, 1e-9 * r.tokens_per_s);
    EXPECT_DOUBLE_EQ(r.flops.total(), training_flops(cfg.model, 4, 51).total());
    EXPECT_GT(r.cpu_step_s, 0);
    EXPECT_GT(r.params, 0u);
    EXPECT_GT(r.activation_bytes, 0u);
}

TEST(Bench, ShortRunIsConsistent) {
    RunConfig cfg;
    apply_toml(cfg, find_recipe("bench-r1").toml, "bench-r1");
    apply_setting(cfg, "model.dim=32");
    apply_setting(cfg, "train.batch=4");
    apply_setting(cfg, "train.context=16");
    apply_setting(cfg, "train.threads=1");
    BenchOptions opt;
    opt.steps = 3, opt.warmup = 1, opt.peak_n = 256;
    const BenchResult r = run_bench(cfg, opt);
    EXPECT_GT(r.tokens_per_s, 0);
    EXPECT_NEAR(r.tokens_per_s, 4 * 16 * r.steps_per_s, 1e-6 * r.tokens_per_s);
    EXPECT_NEAR(r.gflops, r.flops.total() / r.step_s / 1e9, 1e-9 * r.gflops);
    // Three peak rounds; a fraction only when it is at most 1 and the rounds agree.
    ASSERT_EQ(r.peak.round_best.size(), 3u);
    EXPECT_DOUBLE_EQ(r.peak.best,
                     *std::max_element(r.peak.round_best.begin(), r.peak.round_best.end()));
    EXPECT_GE(r.peak.calls, 15);
    if (r.peak_fraction) {
        EXPECT_NEAR(*r.peak_fraction, r.gflops / r.peak.best, 1e-12);
        EXPECT_LE(*r.peak_fraction, 1.0);
        EXPECT_LE(r.peak.spread(), kPeakMaxSpread);
    } else {
        EXPECT_FALSE(r.peak_note.empty());
    }
    EXPECT_LE(r.step_min_s, r.step_median_s);
    // one thread: the CPU time of a step is at most its wall time (plus clock granularity)
    EXPECT_GT(r.cpu_step_s, 0);
    EXPECT_LE(r.cpu_step_s, r.step_s * 1.05 + 1e-4);
    EXPECT_GT(r.peak.cpu_best, 0);
    if (r.cpu_peak_fraction)
        EXPECT_NEAR(*r.cpu_peak_fraction, r.flops.total() / r.cpu_step_s / 1e9 / r.peak.cpu_best,
                    1e-9);
    ASSERT_TRUE(r.profiled);
    double families = 0;
    for (double s : r.family_s) families += s;
    EXPECT_GT(r.family_s[size_t(KernelFamily::matmul)], 0);
    EXPECT_GT(r.family_s[size_t(KernelFamily::attention)], 0);
    EXPECT_LE(families, r.profiled_step_s * 1.001);
    EXPECT_FALSE(profile::enabled());  // the timer is off again after the profiled pass
    EXPECT_GT(r.param_bytes, 0u);
    EXPECT_GT(r.activation_bytes, 0u);
    EXPECT_GE(r.peak_rss_bytes, r.param_bytes + r.activation_bytes);
}

TEST(Bench, PeakFractionIsWithheldWhenTheMachineIsNoisy) {
    SgemmPeak p;
    p.best = 100, p.round_best = {100, 80, 99};
    EXPECT_NEAR(p.spread(), 0.25, 1e-12);
    BenchResult r;
    r.peak = p;
    r.gflops = 50;
    judge_peak(r);  // rounds 25 % apart
    EXPECT_FALSE(r.peak_fraction);
    EXPECT_NE(r.peak_note.find("too noisy"), std::string::npos);
    r.peak.round_best = {100, 95, 99};
    r.gflops = 120;  // the run beat the peak
    judge_peak(r);
    EXPECT_FALSE(r.peak_fraction);
    EXPECT_NE(r.peak_note.find("beat"), std::string::npos);
    r.gflops = 75;
    judge_peak(r);
    ASSERT_TRUE(r.peak_fraction);
    EXPECT_DOUBLE_EQ(*r.peak_fraction, 0.75);
    EXPECT_TRUE(r.peak_note.empty());
    // attnlab's own kernel ran the products faster than OpenBLAS: beating OpenBLAS's peak
    // is then not noise, beating the kernel's own speed too is
    r.peak.own_best = 150;
    r.gflops = 120;
    judge_peak(r);
    ASSERT_TRUE(r.peak_fraction);
    EXPECT_DOUBLE_EQ(*r.peak_fraction, 1.2);
    r.gflops = 151;
    judge_peak(r);
    EXPECT_FALSE(r.peak_fraction);
    EXPECT_NE(r.peak_note.find("own kernel"), std::string::npos);
}
