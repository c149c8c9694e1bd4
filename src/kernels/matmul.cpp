// attnlab's matrix-product kernel for one row block of a layer (matmul.h).
//
// The BLIS layout in its simplest form: K in chunks of kKc, N in chunks of kNc; per
// chunk the kKc x kNc slice of op(B) is packed into panels of kNr = 32 columns (k-major,
// zero-padded); op(A) is read in place (14 rows of it, strided either way); a
// micro-kernel keeps a 14 x 32 tile of C in 28 AVX-512 registers over the chunk's k and
// adds it into C once. Each element of C is summed over
// k in one fixed order, so the result depends only on the shapes.
#include "kernels/matmul.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "core/error.h"
#include "core/gemm.h"
#include "kernels/vec.h"

namespace attnlab {

#if defined(__AVX512F__)

namespace {

constexpr int kMr = 14;   // rows of the register tile
constexpr int kNr = 32;   // columns of the register tile: two vectors
constexpr int kKc = 256;  // k per chunk: the 14 rows of A of one tile (14 KiB) stay in L1
constexpr int kNc = 256;  // columns per chunk: the packed B slice (256 KiB) stays in L2

// The packed slice of op(B) of one thread, reused by every call (no allocation per call).
struct Packs {
    alignas(64) float b[kKc * kNc];
};
thread_local Packs packs;

// How an operand element is found: x(i, k) = p[i * si + k * sk].
struct Strided {
    const float* p;
    size_t si, sk;
    const float* at(int i, int k) const { return p + size_t(i) * si + size_t(k) * sk; }
};

// tile[R x 32] = a(., 0..kc) @ pb (kc x 32), a(r, k) = a.p[r * a.si + k * a.sk]; then
// C (= or +=) alpha * tile. R rows are live (R <= kMr); C has ldc columns per row and
// the kernel writes 32 columns (callers pass a scratch tile when fewer are valid).
template <int R>
void micro_tile(int kc, Strided a, const float* pb, float* c, size_t ldc, bool add, float alpha) {
    Vec16 lo[R], hi[R];
    for (int r = 0; r < R; r++) lo[r] = hi[r] = Vec16{};
    for (int k = 0; k < kc; k++) {
        const Vec16 b0 = load16(pb + size_t(k) * kNr), b1 = load16(pb + size_t(k) * kNr + kLanes);
        const float* ak = a.p + size_t(k) * a.sk;
#pragma GCC unroll 14
        for (int r = 0; r < R; r++) {
            const float x = ak[size_t(r) * a.si];
            lo[r] += b0 * x;
            hi[r] += b1 * x;
        }
    }
    for (int r = 0; r < R; r++) {
        float* cr = c + size_t(r) * ldc;
        if (add) {
            store16(cr, load16(cr) + lo[r] * alpha);
            store16(cr + kLanes, load16(cr + kLanes) + hi[r] * alpha);
        } else {
            store16(cr, lo[r] * alpha);
            store16(cr + kLanes, hi[r] * alpha);
        }
    }
}

using MicroTile = void (*)(int, Strided, const float*, float*, size_t, bool, float);

template <int... R>
constexpr auto micro_table(std::integer_sequence<int, R...>) {
    return std::array<MicroTile, sizeof...(R)>{&micro_tile<R + 1>...};
}
// kMicro[R - 1]: the kernel for R live rows.
constexpr auto kMicro = micro_table(std::make_integer_sequence<int, kMr>{});

// pb (kc x 32 per panel, panels of 32 columns side by side) = b(k, j) for k < kc,
// j < nc, zero for the padding columns of the last panel.
void pack_b(float* pb, Strided b, int kc, int nc) {
    for (int j0 = 0; j0 < nc; j0 += kNr) {
        float* panel = pb + size_t(j0) * kc;
        const int nj = std::min(kNr, nc - j0);
        if (b.sk != 1 && b.si == 1 && nj == kNr) {  // rows of b are contiguous in j
            for (int k = 0; k < kc; k++) {
                const float* src = b.at(j0, k);
                store16(panel + size_t(k) * kNr, load16(src));
                store16(panel + size_t(k) * kNr + kLanes, load16(src + kLanes));
            }
            continue;
        }
        for (int j = 0; j < kNr; j++) {
            if (j >= nj) {
                for (int k = 0; k < kc; k++) panel[size_t(k) * kNr + j] = 0.0f;
                continue;
            }
            const float* src = b.at(j0 + j, 0);
            for (int k = 0; k < kc; k++) panel[size_t(k) * kNr + j] = src[size_t(k) * b.sk];
        }
    }
}

}  // namespace

bool matmul_own_built() {
    return true;
}

void matmul_own(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A,
                int lda, const float* B, int ldb, float beta, float* C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {  // C = beta C
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float& c = C[size_t(i) * ldc + j];
                c = beta == 0.0f ? 0.0f : beta * c;
            }
        return;
    }
    if (beta != 0.0f && beta != 1.0f)  // C = beta C once, then every chunk adds
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[size_t(i) * ldc + j] *= beta;
    // a(i, k) = op(A)[i, k], b(j, k) = op(B)[k, j]
    const Strided a = trans_a ? Strided{A, 1, size_t(lda)} : Strided{A, size_t(lda), 1};
    const Strided b = trans_b ? Strided{B, size_t(ldb), 1} : Strided{B, 1, size_t(ldb)};
    Packs& pk = packs;
    alignas(64) float edge[kMr * kNr];
    for (int j0 = 0; j0 < N; j0 += kNc) {
        const int nc = std::min(kNc, N - j0);
        for (int k0 = 0; k0 < K; k0 += kKc) {
            const int kc = std::min(kKc, K - k0);
            const bool add = k0 > 0 || beta != 0.0f;
            pack_b(pk.b, {b.at(j0, k0), b.si, b.sk}, kc, nc);
            for (int i0 = 0; i0 < M; i0 += kMr) {
                const int rows = std::min(kMr, M - i0);
                const Strided ai = {a.at(i0, k0), a.si, a.sk};
                const MicroTile micro = kMicro[size_t(rows - 1)];
                for (int jp = 0; jp < nc; jp += kNr) {
                    const float* pb = pk.b + size_t(jp) * kc;
                    float* c = C + size_t(i0) * ldc + j0 + jp;
                    const int nj = std::min(kNr, nc - jp);
                    if (nj == kNr) {
                        micro(kc, ai, pb, c, size_t(ldc), add, alpha);
                        continue;
                    }
                    micro(kc, ai, pb, edge, kNr, false, alpha);  // the last, narrower panel
                    for (int r = 0; r < rows; r++)
                        for (int j = 0; j < nj; j++) {
                            float& cij = c[size_t(r) * ldc + j];
                            cij = (add ? cij : 0.0f) + edge[r * kNr + j];
                        }
                }
            }
        }
    }
}

#else  // no AVX-512: OpenBLAS does every product

bool matmul_own_built() {
    return false;
}

void matmul_own(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A,
                int lda, const float* B, int ldb, float beta, float* C, int ldc) {
    gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

#endif

namespace {

enum class BlockGemm { own, blas, invalid };

BlockGemm block_gemm() {
    static const BlockGemm mode = [] {
        const char* v = std::getenv("ATTNLAB_GEMM");
        if (!v || !*v || std::string(v) == "own") return BlockGemm::own;
        if (std::string(v) == "blas") return BlockGemm::blas;
        return BlockGemm::invalid;
    }();
    return mode;
}

bool use_own() {
    return matmul_own_built() && block_gemm() != BlockGemm::blas;
}

}  // namespace

const char* matmul_block_name() {
    if (block_gemm() == BlockGemm::invalid)
        throw Error("ATTNLAB_GEMM='" + std::string(std::getenv("ATTNLAB_GEMM")) +
                    "' is not a product kernel; valid: own (attnlab's kernel where built, the "
                    "default), blas (OpenBLAS for every product)");
    return use_own() ? "attnlab AVX-512" : "OpenBLAS";
}

void matmul_block(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A,
                  int lda, const float* B, int ldb, float beta, float* C, int ldc) {
    if (use_own())
        matmul_own(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else
        gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace attnlab
