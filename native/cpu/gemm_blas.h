// OpenBLAS (or another CBLAS) loaded at run time with dlopen, so that the addon neither links nor
// needs it. DITTY_BLAS=/path/to/lib: use that library; DITTY_BLAS=none: never use BLAS; unset:
// use libopenblas.so.0 (else libblas.so.3) only where the own kernel has no AVX-512 path.
#pragma once
#include <cstdint>

namespace ditty::cpu::gemm_blas {

// Runs C = alpha op(A) op(B) + beta C with BLAS when BLAS is preferred and loads; returns false
// when the caller must run its own kernel. BLAS runs its own threads (set to thread_count()), so
// this must not be called from inside parallel_for: kernels use gemm_detail::gemm_serial there.
bool run(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
         const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
// "openblas <path>" while BLAS is in use, else null.
const char* name();

}  // namespace ditty::cpu::gemm_blas
