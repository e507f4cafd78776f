// Internals of the products family: the register-blocked micro-kernels (one per SIMD level) and
// the single-threaded blocked GEMM that the NF4 and head kernels run on their own tiles.
#pragma once
#include <cstdint>

namespace ditty::cpu::gemm_detail {

// C[m,n] (= or +=) alpha * sum_k a[k][i] b[k][j] for a packed MR x kc panel `a` (k-major: MR values
// per k) and a packed kc x NR panel `b` (NR values per k); only rows i < m and columns j < n of the
// MR x NR tile are stored. The sum runs over k in order, so results do not depend on threads.
using MicroKernel = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n,
                             float alpha, bool overwrite);

struct Kernel {
  int mr;
  int nr;
  MicroKernel micro;
  const char* name;
};

// The kernels each SIMD level provides (defined in gemm_avx512.cpp, gemm_avx2.cpp, gemm.cpp).
const Kernel& kernel_avx512();
const Kernel& kernel_avx2();
const Kernel& kernel_portable();
// The one simd_level() allows (read on each call, so DITTY_SIMD set at run time takes effect).
const Kernel& kernel_for_simd();

// K is consumed in blocks of KC, so that every output element sums its K products in the same
// order whatever the M/N tiling and the thread count.
constexpr int64_t KC = 256;

// The blocked product over C's rows [0, M) and columns [0, N), on the calling thread only (safe
// inside parallel_for): same arguments as ditty::cpu::gemm. Packing scratch is thread-local.
void gemm_serial(const Kernel& k, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                 const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Own multithreaded product (never BLAS): tiles of C over the pool.
void gemm_own(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace ditty::cpu::gemm_detail
