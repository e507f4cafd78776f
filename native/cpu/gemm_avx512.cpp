// AVX-512 micro-kernel: an MR x (16 NV) tile of C held in MR * NV zmm accumulators; per k, NV
// 16-wide rows of packed B and MR broadcasts of packed A feed MR * NV FMAs. Only this file is
// built for AVX-512; the dispatcher calls it after checking the CPU.
#include <immintrin.h>

#include <cstdint>

#include "gemm_kernel.h"

namespace ditty::cpu::gemm_detail {
namespace {

template <int MR, int NV>
__attribute__((target("avx512f,avx512bw,avx512vl,fma"))) void micro(int64_t kc, const float* a, const float* b,
                                                                     float* c, int64_t ldc, int m, int n,
                                                                     float alpha, bool overwrite) {
  constexpr int NR = NV * 16;
  __m512 acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) acc[i][v] = _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < kc; k++) {
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) bv[v] = _mm512_loadu_ps(b + 16 * v);
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
      const __m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
    }
    a += MR;
    b += NR;
  }
  const __m512 va = _mm512_set1_ps(alpha);
  __mmask16 mask[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; v++) {
    const int left = n - 16 * v;
    mask[v] = left >= 16 ? static_cast<__mmask16>(0xFFFF) : left <= 0 ? static_cast<__mmask16>(0) : static_cast<__mmask16>((1u << left) - 1u);
  }
  const bool full = n == NR;
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++) {
    if (i >= m) break;
    float* row = c + i * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) {
      __m512 r = _mm512_mul_ps(acc[i][v], va);
      if (full) {
        if (!overwrite) r = _mm512_add_ps(_mm512_loadu_ps(row + 16 * v), r);
        _mm512_storeu_ps(row + 16 * v, r);
      } else {
        if (!overwrite) r = _mm512_add_ps(_mm512_maskz_loadu_ps(mask[v], row + 16 * v), r);
        _mm512_mask_storeu_ps(row + 16 * v, mask[v], r);
      }
    }
  }
}

}  // namespace

const Kernel& kernel_avx512() {
  // 12 x 32 (24 accumulators + 2 B rows + 1 broadcast of the 32 zmm registers); 6 x 64 and
  // 8 x 48 measured the same within noise on Zen 5, 14 x 32 slower
  static const Kernel k{12, 32, micro<12, 2>, "ditty avx512"};
  return k;
}

}  // namespace ditty::cpu::gemm_detail
