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
// AVX-512 only (check simd_level() first): dst[k * nr + i] = src[i * lds + k] for 16 rows i and
// k < kc, the transposing copy that packing op(B) = B^T needs, 16 x 16 values per register block.
void transpose16_avx512(const float* src, int64_t lds, int64_t kc, float* dst, int nr);
// The general form: lanes (<= 16) destination columns at row stride `stride`, reading `rows`
// source rows (the rest are zeros), for packing A's micro-panels of mr rows.
void transpose_pack_avx512(const float* src, int64_t lds, int rows, int lanes, int64_t kc, float* dst, int stride);
// Whether the transposes may run now.
bool transpose16_allowed();

// The one simd_level() allows (read on each call, so DITTY_SIMD set at run time takes effect).
const Kernel& kernel_for_simd();

// K is consumed in blocks of KC, so that every output element sums its K products in the same
// order whatever the M/N tiling and the thread count.
constexpr int64_t KC = 256;

// Where the B operand comes from: fills dst with rows [k0, k0+kc) x columns [j0, j0+n) of op(B)
// as micro-panels of nr columns (dst[(p/nr)*kc*nr + k*nr + jj] = op(B)[k0+k, j0+p+jj]), the
// columns of the last panel past n zero. A dense matrix is copied; an NF4 weight is dequantized
// straight into this layout, so the product never needs the whole float weight.
struct BSource {
  void (*pack)(const void* ctx, int64_t j0, int64_t n, int64_t k0, int64_t kc, int nr, float* dst);
  const void* ctx;
};

// The blocked product over C's rows [0, M) and columns [0, N), on the calling thread only (safe
// inside parallel_for): same arguments as ditty::cpu::gemm. Packing scratch is thread-local.
void gemm_serial(const Kernel& k, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                 const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
// The same with B from a source; column j of C is column j0 + j of op(B).
void gemm_serial_source(const Kernel& k, bool transA, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                        int64_t lda, const BSource& b, int64_t j0, float beta, float* C, int64_t ldc);

// Own multithreaded products (never BLAS): tiles of C over the pool.
void gemm_own(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm_own_source(bool transA, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                     const BSource& b, float beta, float* C, int64_t ldc);

// The linears' bias: y[rows,out] (+)= bias (over the pool) so that the product after it adds x W^T
// with the beta this returns (1 once the bias is in y, else accumulate ? 1 : 0); bias may be null.
float bias_prefill(const float* bias, int64_t out, int64_t rows, float* y, bool accumulate);

// Packs op(B) rows [k0, k0+kc) x columns [j0, j0+n) of a dense row-major B (the dense BSource).
void pack_b(bool transB, const float* B, int64_t ldb, int64_t j0, int64_t n, int64_t k0, int64_t kc, int nr,
            float* dst);

}  // namespace ditty::cpu::gemm_detail
