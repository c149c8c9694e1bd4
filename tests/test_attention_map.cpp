// The attention map registry: a map defined and registered in this file (w =
// exp(-s^2), elementwise) is found by name, resolves in a config, passes the
// kernel and whole-model gradient checks, causal and bidirectional, and gets its
// golden kernel cases, with no other edit; a wrong derivative is caught; bad
// registrations are refused; the built-in constants name their maps.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "cli/golden.h"
#include "core/error.h"
#include "kernels/attention_map_kinds.h"
#include "model/config.h"
#include "model/gradcheck.h"

using namespace attnlab;

namespace {

// w = exp(-s^2), dw/ds = -2 s w
struct Gauss {
    static constexpr bool needs_scores = true;
    static Vec16 weight(Vec16 s, float) { return fast_exp(-s * s); }
    static Vec16 dweight(Vec16 s, Vec16 w) { return -2.0f * s * w; }
};

// The same map with the derivative's sign flipped: the gradient check must fail.
struct GaussWrong : Gauss {
    static Vec16 dweight(Vec16 s, Vec16 w) { return 2.0f * s * w; }
};

AttnMap gauss() {
    static const AttnMap m = register_attention_map(elementwise_map<Gauss>(
        {"gauss", "exp(-s_ij^2)", "-2 s_ij w_ij g_ij", "a map defined in the test"}));
    return m;
}

}  // namespace

TEST(AttentionMap, BuiltinConstantsNameTheirMaps) {
    EXPECT_STREQ(AttnMap::softmax.info().name, "softmax");
    EXPECT_STREQ(AttnMap::expressive.info().name, "expressive");
    EXPECT_STREQ(AttnMap::quadratic.info().name, "quadratic");
    EXPECT_STREQ(AttnMap::cog.info().name, "cog");
    EXPECT_STREQ(AttnMap::extensive.info().name, "extensive");
    EXPECT_STREQ(AttnMap::sigmoid.info().name, "sigmoid");
    for (const auto& m : all_attention_maps()) {
        EXPECT_EQ(attention_map_from_name(m.name), m.map) << m.name;
        EXPECT_TRUE(m.formula && *m.formula && m.derivative && *m.derivative) << m.name;
    }
}

TEST(AttentionMap, RegisteredInATestPassesEveryGradientCheck) {
    const AttnMap g = gauss();
    EXPECT_EQ(attention_map_from_name("gauss"), g);
    EXPECT_FALSE(g.info().normalised);
    EXPECT_EQ(resolve_attention("model.attention", "softmax,gauss", 2),
              (std::vector<AttnMap>{AttnMap::softmax, g}));
    int attention_checks = 0;
    for (const auto& r : run_kernel_gradchecks("gauss")) {
        EXPECT_TRUE(r.ok()) << r.kernel << " " << r.map << " err " << r.max_err;
        attention_checks += r.map == "gauss";
    }
    EXPECT_EQ(attention_checks, 4);  // causal and bidirectional, with and without ALiBi
    int model_checks = 0;
    for (const auto& r : run_model_gradchecks("gauss")) {
        EXPECT_TRUE(r.ok()) << r.kernel << " " << r.map << " " << r.tensor << " err " << r.max_err;
        model_checks += r.map.find("gauss") != std::string::npos;
    }
    EXPECT_GE(model_checks, 7);  // every positional encoding, post-norm, cisformer
}

// Run in a child process, so that the planted map does not stay registered for the
// other tests of this binary (their gradient checks cover every registered map).
TEST(AttentionMap, WrongDerivativeFailsTheGradientCheck) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    auto check = [] {
        register_attention_map(elementwise_map<GaussWrong>(
            {"gauss-wrong", "exp(-s_ij^2)", "+2 s_ij w_ij g_ij (wrong)", "a planted bug"}));
        int failed = 0;
        for (const auto& r : run_kernel_gradchecks("gauss-wrong")) failed += !r.ok();
        std::fprintf(stderr, "failed checks: %d\n", failed);
        std::exit(0);
    };
    EXPECT_EXIT(check(), ::testing::ExitedWithCode(0), "failed checks: 4\n");
}

TEST(AttentionMap, BadRegistrationsAreRefused) {
    gauss();
    auto info = elementwise_map<Gauss>({"gauss", "exp(-s_ij^2)", "-2 s w g", "again"});
    EXPECT_THROW(register_attention_map(info), Error);  // taken name
    info.name = "softmax";
    EXPECT_THROW(register_attention_map(info), Error);
    info.name = "";
    EXPECT_THROW(register_attention_map(info), Error);
    info.name = "gauss2";
    info.derivative = nullptr;
    EXPECT_THROW(register_attention_map(info), Error);
    info.derivative = "d";
    info.backward_block = nullptr;
    EXPECT_THROW(register_attention_map(info), Error);
}

// With ATTNLAB_MAP_GOLDEN_OUT set (by tests/python/test_attention_kernel.py), writes
// the golden kernel cases of the test's map there, for the PyTorch reference's entry.
TEST(AttentionMap, GoldenCasesForTheTestMap) {
    const char* out = std::getenv("ATTNLAB_MAP_GOLDEN_OUT");
    if (!out) GTEST_SKIP() << "ATTNLAB_MAP_GOLDEN_OUT not set (the Python golden test sets it)";
    write_attention_golden(out, {gauss()});
}
