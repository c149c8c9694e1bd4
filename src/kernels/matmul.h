// The matrix products of the layers' row blocks: attnlab's own register-blocked
// kernel where the build has AVX-512, OpenBLAS otherwise.
//
// A layer splits its product into fixed blocks (linear.cpp) and each thread computes
// whole blocks, so a block's product runs on one core. For those shapes (a few hundred
// rows, 64..512 columns, K from 64 to a few thousand) a kernel written for them beats
// OpenBLAS as Debian ships it here: OpenBLAS picks its kernel set at load time, and an
// environment that sets OPENBLAS_CORETYPE=Haswell (as this project's machines do) runs
// its AVX2 kernels on a CPU with AVX-512. docs/performance.md has the measurements.
#pragma once

namespace attnlab {

// Row-major C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C, on the calling
// thread, as gemm() (core/gemm.h): attnlab's kernel (matmul_own) when it is built in
// and not switched off, else OpenBLAS. beta = 0 never reads C. The result does not
// depend on the thread count or on which thread computes it.
void matmul_block(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A,
                  int lda, const float* B, int ldb, float beta, float* C, int ldc);

// attnlab's kernel, whatever the setting (tests compare it with gemm_naive). Only
// callable where matmul_own_built() is true.
void matmul_own(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A,
                int lda, const float* B, int ldb, float beta, float* C, int ldc);

// True when this build has the kernel (compiled with AVX-512).
bool matmul_own_built();

// Which products matmul_block runs: "attnlab AVX-512" or "OpenBLAS". The environment
// variable ATTNLAB_GEMM=blas (read once, at the first call) sends every block to
// OpenBLAS, as before this kernel existed; ATTNLAB_GEMM=own (the default) uses the kernel
// where it is built. Any other value is an error that names the valid ones.
const char* matmul_block_name();

}  // namespace attnlab
