// The one matrix-multiply entry point: every matmul in attnlab goes through
// gemm() (OpenBLAS sgemm); gemm_naive() exists only so tests can check it.
#pragma once

namespace attnlab {

// Row-major C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C,
// op(X) = X^T when the flag is set. lda/ldb/ldc are row strides in floats.
void gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
          const float* B, int ldb, float beta, float* C, int ldc);

// Reference triple loop in double precision, same contract.
void gemm_naive(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A,
                int lda, const float* B, int ldb, float beta, float* C, int ldc);

// Sets the thread count of our OpenMP loops and of OpenBLAS.
void set_threads(int n);
int get_threads();

// OpenBLAS picks its kernels once, when it loads, from the CPU (its AVX-512 "Cooperlake"
// or "SkylakeX" kernels on this project's machines) unless OPENBLAS_CORETYPE names a set.
// The kernel set OpenBLAS runs ("SkylakeX", "Haswell", ...).
const char* blas_kernels();

// Sets the thread count for a scope and restores it afterwards.
struct ThreadScope {
    int saved;
    explicit ThreadScope(int n) : saved(get_threads()) { set_threads(n); }
    ~ThreadScope() { set_threads(saved); }
};

}  // namespace attnlab
