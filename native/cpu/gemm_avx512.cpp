// AVX-512 micro-kernel: an MR x (16 NV) tile of C held in MR * NV zmm accumulators; per k, NV
// 16-wide rows of packed B and MR broadcasts of packed A feed MR * NV FMAs. Only this file is
// built for AVX-512; the dispatcher calls it after checking the CPU.
#include <cstdint>

#include "gemm_intrinsics.h"
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

// dst[k * stride + i] = src[i * lds + k] for k < kc and i < lanes (<= 16), reading only the first
// `rows` source rows (the others count as zeros): the transposing copy that packing needs, 16 x 16
// values per register block (unpack, then 128-bit lane shuffles), one (masked) store per k.
__attribute__((target("avx512f,avx512bw,avx512vl"))) void transpose_pack_avx512(const float* src, int64_t lds, int rows,
                                                                                 int lanes, int64_t kc, float* dst,
                                                                                 int stride) {
  const __mmask16 store = static_cast<__mmask16>((1u << lanes) - 1u);
  int64_t k = 0;
  for (; k + 16 <= kc; k += 16) {
    __m512 r[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) r[i] = i < rows ? _mm512_loadu_ps(src + i * lds + k) : _mm512_setzero_ps();
    __m512 t[16];
#pragma GCC unroll 8
    for (int i = 0; i < 16; i += 2) {
      t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
      t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 16; i += 4) {
      r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
      r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
      r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
      r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    // r[4q + c] now holds, per 128-bit lane L, column 4L + c of rows 4q..4q+3
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
      const __m512 a = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);  // lanes 0, 2 of each
      const __m512 b = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
      const __m512 e = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xDD);  // lanes 1, 3 of each
      const __m512 f = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xDD);
      _mm512_mask_storeu_ps(dst + (k + c) * stride, store, _mm512_shuffle_f32x4(a, b, 0x88));
      _mm512_mask_storeu_ps(dst + (k + 8 + c) * stride, store, _mm512_shuffle_f32x4(a, b, 0xDD));
      _mm512_mask_storeu_ps(dst + (k + 4 + c) * stride, store, _mm512_shuffle_f32x4(e, f, 0x88));
      _mm512_mask_storeu_ps(dst + (k + 12 + c) * stride, store, _mm512_shuffle_f32x4(e, f, 0xDD));
    }
  }
  for (; k < kc; k++)
    for (int i = 0; i < lanes; i++) dst[k * stride + i] = i < rows ? src[i * lds + k] : 0.0f;
}

void transpose16_avx512(const float* src, int64_t lds, int64_t kc, float* dst, int nr) {
  transpose_pack_avx512(src, lds, 16, 16, kc, dst, nr);
}

const Kernel& kernel_avx512() {
  // 12 x 32 (24 accumulators + 2 B rows + 1 broadcast of the 32 zmm registers); 6 x 64 and
  // 8 x 48 measured the same within noise on Zen 5, 14 x 32 slower
  static const Kernel k{12, 32, micro<12, 2>, "ditty avx512"};
  return k;
}

}  // namespace ditty::cpu::gemm_detail
