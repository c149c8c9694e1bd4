// gemm() over cblas_sgemm, and the thread settings shared by OpenMP and OpenBLAS.
#include "core/gemm.h"

#include <cblas.h>
#include <omp.h>

extern "C" void openblas_set_num_threads(int);

namespace attnlab {

void gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
          const float* B, int ldb, float beta, float* C, int ldc) {
    if (M == 0 || N == 0) return;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_naive(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A,
                int lda, const float* B, int ldb, float beta, float* C, int ldc) {
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double acc = 0.0;
            for (int k = 0; k < K; k++) {
                const double a = trans_a ? A[k * lda + m] : A[m * lda + k];
                const double b = trans_b ? B[n * ldb + k] : B[k * ldb + n];
                acc += a * b;
            }
            float& c = C[m * ldc + n];
            c = float(alpha * acc + (beta == 0.0f ? 0.0 : double(beta) * c));
        }
}

void set_threads(int n) {
    n = n < 1 ? 1 : n > 256 ? 256 : n;  // grad_norm keeps one partial sum per thread
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int get_threads() {
    return omp_get_max_threads();
}

const char* blas_kernels() {
    const char* core = openblas_get_corename();
    return core ? core : "unknown";
}

}  // namespace attnlab
