// LoRA products over a frozen linear, the same function as the `fused` op of
// src/lora/lora-linear.ts: h = dropout(x) A^T, y += (h * scaling) B^T, and its backward.
// The rank r is small (8..64), so each narrow product is laid out with r on the side where the
// micro-kernel pads least (its MR rows rather than its 16/32-wide NR columns).
#include "ditty/lora.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "ditty/cpu_features.h"
#include "ditty/gemm.h"
#include "ditty/parallel.h"
#include "gemm_intrinsics.h"
#include "gemm_kernel.h"

namespace ditty::cpu {
namespace {

// mulberry32's output for state s (src/random/rng.ts Rng.next, one step)
inline uint32_t mulberry32(uint32_t s) {
  uint32_t t = s;
  t = (t ^ (t >> 15)) * (t | 1u);
  t ^= t + (t ^ (t >> 7)) * (t | 61u);
  return t ^ (t >> 14);
}

// Call-local scratch that is not zero-filled (every element is written before it is read).
struct Scratch {
  std::unique_ptr<float[]> data;
  explicit Scratch(int64_t n) : data(new float[static_cast<size_t>(std::max<int64_t>(n, 1))]) {}
  float* get() { return data.get(); }
};

// The dropout draw of element i is u = k / 2^32 with k = mulberry32(seed + (i+1) * 0x6d2b79f5);
// u < p exactly when k < ceil(p * 2^32) (the scaling by 2^32 is exact and k is an integer), so
// the mask needs no floating point per element. keep = f32(1 / (1 - p)) computed in double.
struct Dropout {
  uint64_t threshold;  // drop when k < threshold (up to 2^32)
  float keep;
  uint32_t seed;
  explicit Dropout(double p, uint32_t s)
      : threshold(static_cast<uint64_t>(std::ceil(p * 4294967296.0))), keep(static_cast<float>(1.0 / (1.0 - p))), seed(s) {}
  float mask(int64_t i) const {
    const uint32_t s = seed + static_cast<uint32_t>(static_cast<uint64_t>(i + 1) * 0x6d2b79f5u);
    return mulberry32(s) < threshold ? 0.0f : keep;
  }
};

// dst[i] (+)= src[i] * mask(i) for i in [i0, i1): 16 draws at a time.
__attribute__((target("avx512f,avx512bw,avx512vl"))) void apply_mask_avx512(const Dropout& d, const float* src,
                                                                             float* dst, bool add, int64_t i0,
                                                                             int64_t i1) {
  const __m512i lane = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
  const __m512i golden = _mm512_set1_epi32(0x6d2b79f5);
  const __m512i seed = _mm512_set1_epi32(static_cast<int>(d.seed));
  const bool all = d.threshold > 0xffffffffull;
  const __m512i thr = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(all ? 0 : d.threshold)));
  const __m512 keep = _mm512_set1_ps(d.keep);
  int64_t i = i0;
  for (; i + 16 <= i1; i += 16) {
    const __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(i))), lane);
    __m512i t = _mm512_add_epi32(seed, _mm512_mullo_epi32(idx, golden));
    t = _mm512_mullo_epi32(_mm512_xor_si512(t, _mm512_srli_epi32(t, 15)), _mm512_or_si512(t, _mm512_set1_epi32(1)));
    t = _mm512_xor_si512(t, _mm512_add_epi32(t, _mm512_mullo_epi32(_mm512_xor_si512(t, _mm512_srli_epi32(t, 7)),
                                                                    _mm512_or_si512(t, _mm512_set1_epi32(61)))));
    const __m512i k = _mm512_xor_si512(t, _mm512_srli_epi32(t, 14));
    const __mmask16 kept = all ? static_cast<__mmask16>(0) : _mm512_cmpge_epu32_mask(k, thr);
    const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(src + i), _mm512_maskz_mov_ps(kept, keep));
    _mm512_storeu_ps(dst + i, add ? _mm512_add_ps(_mm512_loadu_ps(dst + i), v) : v);
  }
  for (; i < i1; i++) dst[i] = add ? dst[i] + src[i] * d.mask(i) : src[i] * d.mask(i);
}

// dst (+)= src * mask over rows x in (flat index i = row * in + c, as dropoutMask(rows * in)
// numbers it); dst may be src.
void apply_mask(const Dropout& d, const float* src, float* dst, bool add, int64_t rows, int64_t in) {
  const bool simd512 = std::strcmp(simd_level(), "avx512") == 0;
  // chunks of >= 2^18 elements (~0.1 ms): each parallel_for wakes every pool thread, which costs
  // far more than this loop's share on a busy machine
  const size_t grain = static_cast<size_t>(std::max<int64_t>(1, (int64_t{1} << 18) / std::max<int64_t>(in, 1)));
  parallel_for(static_cast<size_t>(rows), grain, [&](size_t r0, size_t r1) {
    const int64_t i0 = static_cast<int64_t>(r0) * in;
    const int64_t i1 = static_cast<int64_t>(r1) * in;
    if (simd512) {
      apply_mask_avx512(d, src, dst, add, i0, i1);
      return;
    }
    for (int64_t i = i0; i < i1; i++) dst[i] = add ? dst[i] + src[i] * d.mask(i) : src[i] * d.mask(i);
  });
}

// out[c, r] = in[r, c] for an [R, Cn] matrix
// (small: rank x rows, on the calling thread)
void transpose(const float* src, int64_t R, int64_t Cn, float* dst) {
  for (int64_t c = 0; c < Cn; c++)
    for (int64_t r = 0; r < R; r++) dst[c * R + r] = src[r * Cn + c];
}

// whether an [M, r] product output is better computed as its transpose [r, M]: padding r up to
// the kernel's MR instead of its NR
bool rank_as_rows(int64_t r) {
  const auto& k = gemm_detail::kernel_for_simd();
  const int64_t pad_n = (r + k.nr - 1) / k.nr * k.nr;
  const int64_t pad_m = (r + k.mr - 1) / k.mr * k.mr;
  return pad_m < pad_n;
}

}  // namespace

float dropout_mask_value(uint32_t seed, uint64_t i, double p) {
  if (!(p > 0.0)) return 1.0f;
  return Dropout(p, seed).mask(static_cast<int64_t>(i));
}

void lora_forward(const float* x, int64_t rows, int64_t in, int64_t out, int64_t r, const float* A, const float* B,
                  float scaling, double p, uint32_t seed, float* h, float* y) {
  if (rows <= 0 || r <= 0) return;
  const bool drop = p > 0.0;
  Scratch xm_buf(drop ? rows * in : 0);
  const float* xm = x;
  if (drop) {
    apply_mask(Dropout(p, seed), x, xm_buf.get(), false, rows, in);
    xm = xm_buf.get();
  }
  // h = xm A^T
  if (rank_as_rows(r)) {
    Scratch ht(r * rows);
    gemm(false, true, r, rows, in, 1.0f, A, in, xm, in, 0.0f, ht.get(), rows);
    transpose(ht.get(), r, rows, h);
  } else {
    gemm(false, true, rows, r, in, 1.0f, xm, in, A, in, 0.0f, h, r);
  }
  // y += scaling * h B^T
  gemm(false, true, rows, out, r, scaling, h, r, B, r, 1.0f, y, out);
}

void lora_backward(const float* x, const float* h, const float* dy, int64_t rows, int64_t in, int64_t out, int64_t r,
                   const float* A, const float* B, float scaling, double p, uint32_t seed, float* dA, float* dB,
                   float* dx) {
  if (rows <= 0 || r <= 0) return;
  const bool drop = p > 0.0;
  // ght [r, rows] = scaling * (dy B)^T = scaling * B^T dy^T
  Scratch ght(r * rows);
  gemm(true, true, r, rows, out, scaling, B, r, dy, out, 0.0f, ght.get(), rows);
  // dB += scaling * dy^T h: as its transpose [r, out] = scaling * h^T dy when that pads less
  if (rank_as_rows(r)) {
    Scratch t(r * out);
    gemm(true, false, r, out, rows, scaling, h, r, dy, out, 0.0f, t.get(), out);
    const float* tp = t.get();
    for (int64_t o = 0; o < out; o++)
      for (int64_t j = 0; j < r; j++) dB[o * r + j] += tp[j * out + o];
  } else {
    gemm(true, false, out, r, rows, scaling, dy, out, h, r, 1.0f, dB, r);
  }
  // dA += gh^T xm
  Scratch xm_buf(drop ? rows * in : 0);
  const float* xm = x;
  if (drop) {
    apply_mask(Dropout(p, seed), x, xm_buf.get(), false, rows, in);
    xm = xm_buf.get();
  }
  gemm(false, false, r, in, rows, 1.0f, ght.get(), rows, xm, in, 1.0f, dA, in);
  if (!dx) return;
  // dx += mask * (gh A)
  if (!drop) {
    gemm(true, false, rows, in, r, 1.0f, ght.get(), rows, A, in, 1.0f, dx, in);
    return;
  }
  float* t = xm_buf.get();  // reused: xm is not needed any more
  gemm(true, false, rows, in, r, 1.0f, ght.get(), rows, A, in, 0.0f, t, in);
  apply_mask(Dropout(p, seed), t, dx, true, rows, in);
}

}  // namespace ditty::cpu
