// AVX2 + FMA micro-kernel: a 6 x 16 tile of C in 12 ymm accumulators (the classic Haswell shape:
// 12 accumulators + 2 B rows + 1 broadcast fit the 16 registers).
#include <immintrin.h>

#include <cstdint>

#include "gemm_kernel.h"

namespace ditty::cpu::gemm_detail {
namespace {

constexpr int MR = 6;
constexpr int NR = 16;

__attribute__((target("avx2,fma"))) void micro_6x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                                                     int m, int n, float alpha, bool overwrite) {
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (int i = 0; i < MR; i++) {
    acc[i][0] = _mm256_setzero_ps();
    acc[i][1] = _mm256_setzero_ps();
  }
  for (int64_t k = 0; k < kc; k++) {
    __m256 b0 = _mm256_loadu_ps(b);
    __m256 b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
      __m256 ai = _mm256_broadcast_ss(a + i);
      acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
    }
    a += MR;
    b += NR;
  }
  const __m256 va = _mm256_set1_ps(alpha);
  if (m == MR && n == NR) {
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
      float* row = c + i * ldc;
      __m256 r0 = _mm256_mul_ps(acc[i][0], va);
      __m256 r1 = _mm256_mul_ps(acc[i][1], va);
      if (!overwrite) {
        r0 = _mm256_add_ps(_mm256_loadu_ps(row), r0);
        r1 = _mm256_add_ps(_mm256_loadu_ps(row + 8), r1);
      }
      _mm256_storeu_ps(row, r0);
      _mm256_storeu_ps(row + 8, r1);
    }
    return;
  }
  // edge tile: through a small buffer, storing only the valid part
  alignas(32) float tile[MR][NR];
#pragma GCC unroll 6
  for (int i = 0; i < MR; i++) {
    _mm256_store_ps(tile[i], _mm256_mul_ps(acc[i][0], va));
    _mm256_store_ps(tile[i] + 8, _mm256_mul_ps(acc[i][1], va));
  }
  for (int i = 0; i < m; i++) {
    float* row = c + i * ldc;
    for (int j = 0; j < n; j++) row[j] = overwrite ? tile[i][j] : row[j] + tile[i][j];
  }
}

}  // namespace

const Kernel& kernel_avx2() {
  static const Kernel k{MR, NR, micro_6x16, "ditty avx2"};
  return k;
}

}  // namespace ditty::cpu::gemm_detail
