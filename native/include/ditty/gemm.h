// Dense products (f32, row-major) and the linears built on them.
#pragma once
#include <cstdint>

namespace ditty::cpu {

// C[M,N] = alpha * op(A) op(B) + beta * C. Row-major with row strides lda, ldb, ldc; op(A) is [M,K]
// (A stored [K,M] when transA), op(B) is [K,N] (B stored [N,K] when transB). beta = 0 ignores C's
// old contents (NaN included). It may run OpenBLAS with its own threads (gemm_implementation()),
// so kernels call it from the calling thread, never from inside parallel_for.
void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Which implementation gemm uses, e.g. "ditty avx512" or "openblas /usr/lib/.../libopenblas.so.0".
const char* gemm_implementation();

// y[rows,out] (+)= x[rows,in] W^T + bias, W [out,in] as Hugging Face stores it; bias may be null.
void dense_linear_forward(const float* W, const float* bias, int64_t out, int64_t in, const float* x, int64_t rows,
                          float* y, bool accumulate);
// dx[rows,in] (+)= dy[rows,out] W
void dense_linear_input_grad(const float* W, int64_t out, int64_t in, const float* dy, int64_t rows, float* dx,
                             bool accumulate);

}  // namespace ditty::cpu
