// AVX-512 micro-kernel: a 12 x 32 tile of C held in 24 zmm accumulators; per k, two 16-wide rows
// of packed B and 12 broadcasts of packed A feed 24 FMAs. Only this file is built for AVX-512;
// the dispatcher calls it after checking the CPU.
#include <immintrin.h>

#include <cstdint>

#include "gemm_kernel.h"

namespace ditty::cpu::gemm_detail {
namespace {

constexpr int MR = 12;
constexpr int NV = 2;  // zmm vectors per row
constexpr int NR = NV * 16;

__attribute__((target("avx512f,avx512bw,avx512vl,fma"))) void micro_12x32(int64_t kc, const float* a, const float* b,
                                                                           float* c, int64_t ldc, int m, int n,
                                                                           float alpha, bool overwrite) {
  __m512 acc[MR][NV];
#pragma GCC unroll 12
  for (int i = 0; i < MR; i++) {
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++) acc[i][v] = _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < kc; k++) {
    __m512 b0 = _mm512_loadu_ps(b);
    __m512 b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) {
      __m512 ai = _mm512_set1_ps(a[i]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
    a += MR;
    b += NR;
  }
  const __m512 va = _mm512_set1_ps(alpha);
  const int n0 = n < 16 ? n : 16;
  const int n1 = n > 16 ? n - 16 : 0;
  const __mmask16 k0 = static_cast<__mmask16>((1u << n0) - 1u);
  const __mmask16 k1 = static_cast<__mmask16>((1u << n1) - 1u);
  const bool full = n == NR;
#pragma GCC unroll 12
  for (int i = 0; i < MR; i++) {
    if (i >= m) break;
    float* row = c + i * ldc;
    __m512 r0 = _mm512_mul_ps(acc[i][0], va);
    __m512 r1 = _mm512_mul_ps(acc[i][1], va);
    if (full) {
      if (!overwrite) {
        r0 = _mm512_add_ps(_mm512_loadu_ps(row), r0);
        r1 = _mm512_add_ps(_mm512_loadu_ps(row + 16), r1);
      }
      _mm512_storeu_ps(row, r0);
      _mm512_storeu_ps(row + 16, r1);
    } else {
      if (!overwrite) {
        r0 = _mm512_add_ps(_mm512_maskz_loadu_ps(k0, row), r0);
        r1 = _mm512_add_ps(_mm512_maskz_loadu_ps(k1, row + 16), r1);
      }
      _mm512_mask_storeu_ps(row, k0, r0);
      _mm512_mask_storeu_ps(row + 16, k1, r1);
    }
  }
}

}  // namespace

const Kernel& kernel_avx512() {
  static const Kernel k{MR, NR, micro_12x32, "ditty avx512"};
  return k;
}

}  // namespace ditty::cpu::gemm_detail
