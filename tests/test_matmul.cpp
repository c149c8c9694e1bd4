// kernels/matmul: attnlab's product kernel against the double-precision triple loop,
// over every transpose, alpha and beta, padded leading dimensions and shapes that
// leave partial tiles, k chunks and column chunks.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/gemm.h"
#include "core/rng.h"
#include "kernels/matmul.h"

namespace attnlab {
namespace {

struct Case {
    bool ta, tb;
    int M, N, K;
    float alpha, beta;
};

// max |C - C_naive| / max(1, max |C_naive|) for one case, operands with padded rows.
double matmul_error(const Case& c, bool own) {
    Rng rng(uint64_t(c.M * 131 + c.N * 17 + c.K));
    const int pad = 3;
    const int lda = (c.ta ? c.M : c.K) + pad, ldb = (c.tb ? c.K : c.N) + pad, ldc = c.N + pad;
    std::vector<float> A(size_t(c.ta ? c.K : c.M) * lda), B(size_t(c.tb ? c.N : c.K) * ldb),
        C(size_t(c.M) * ldc);
    for (float& x : A) x = float(rng.normal());
    for (float& x : B) x = float(rng.normal());
    for (float& x : C) x = float(rng.normal());
    std::vector<float> ref = C;
    if (c.beta == 0.0f)  // beta = 0 must not read C: NaN there must not leak
        for (int i = 0; i < c.M; i++) C[size_t(i) * ldc] = NAN;
    if (own)
        matmul_own(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta,
                   C.data(), ldc);
    else
        matmul_block(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta,
                     C.data(), ldc);
    gemm_naive(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, ref.data(),
               ldc);
    double err = 0.0, scale = 1.0;
    for (int i = 0; i < c.M; i++)
        for (int j = 0; j < ldc; j++) {
            const size_t at = size_t(i) * ldc + j;
            if (j >= c.N) {  // the padding columns are not C's: untouched
                if (C[at] != ref[at]) return INFINITY;
                continue;
            }
            if (!std::isfinite(C[at])) return INFINITY;
            err = std::max(err, double(std::fabs(C[at] - ref[at])));
            scale = std::max(scale, double(std::fabs(ref[at])));
        }
    return err / scale;
}

std::vector<Case> cases() {
    std::vector<Case> out;
    const int shapes[][3] = {{1, 32, 1},     {14, 32, 256},  {15, 33, 257},  {256, 192, 64},
                             {256, 64, 256}, {128, 64, 600}, {20, 64, 4096}, {13, 300, 70},
                             {29, 520, 31},  {7, 40, 3}};
    const float ab[][2] = {{1.0f, 0.0f}, {1.0f, 1.0f}, {0.5f, -0.75f}};
    for (const auto& s : shapes)
        for (int t = 0; t < 4; t++)
            for (const auto& x : ab)
                out.push_back({bool(t & 1), bool(t & 2), s[0], s[1], s[2], x[0], x[1]});
    return out;
}

TEST(Matmul, OwnKernelMatchesNaiveEverywhere) {
    if (!matmul_own_built()) GTEST_SKIP() << "built without AVX-512: OpenBLAS does every product";
    for (const Case& c : cases()) {
        const double e = matmul_error(c, true);
        EXPECT_LT(e, 2e-5) << "ta " << c.ta << " tb " << c.tb << " M " << c.M << " N " << c.N
                           << " K " << c.K << " alpha " << c.alpha << " beta " << c.beta;
    }
}

TEST(Matmul, BlockDispatchMatchesNaive) {
    for (const Case& c : cases()) {
        const double e = matmul_error(c, false);
        EXPECT_LT(e, 2e-5) << "ta " << c.ta << " tb " << c.tb << " M " << c.M << " N " << c.N
                           << " K " << c.K;
    }
}

TEST(Matmul, ZeroKAndZeroAlphaScaleC) {
    if (!matmul_own_built()) GTEST_SKIP() << "built without AVX-512";
    std::vector<float> C = {1, 2, 3, 4}, A(4, 1.0f), B(4, 1.0f);
    matmul_own(false, false, 2, 2, 0, 1.0f, A.data(), 2, B.data(), 2, 0.5f, C.data(), 2);
    EXPECT_EQ(C, (std::vector<float>{0.5f, 1.0f, 1.5f, 2.0f}));
    matmul_own(false, false, 2, 2, 2, 0.0f, A.data(), 2, B.data(), 2, 0.0f, C.data(), 2);
    EXPECT_EQ(C, (std::vector<float>(4, 0.0f)));
}

// The same product twice, and from inside a parallel region: bit-identical.
TEST(Matmul, OwnKernelIsDeterministic) {
    if (!matmul_own_built()) GTEST_SKIP() << "built without AVX-512";
    Rng rng(5);
    const int M = 100, N = 70, K = 300;
    std::vector<float> A(size_t(M) * K), B(size_t(K) * N), C1(size_t(M) * N), C2(size_t(M) * N);
    for (float& x : A) x = float(rng.normal());
    for (float& x : B) x = float(rng.normal());
    matmul_own(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C1.data(), N);
#pragma omp parallel num_threads(2)
    {
#pragma omp single
        matmul_own(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C2.data(), N);
    }
    EXPECT_EQ(C1, C2);
}

}  // namespace
}  // namespace attnlab
