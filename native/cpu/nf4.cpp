// NF4 quantization and dequantization, bit-exact with src/quant/nf4.ts (and bitsandbytes).

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "ditty/cpu_features.h"
#include "ditty/nf4.h"
#include "ditty/parallel.h"
#include "gemm_intrinsics.h"
#include "nf4_codebook.h"
#include "nf4_internal.h"

namespace ditty::cpu {
namespace nf4_detail {
namespace {

// 32 values (16 packed bytes, high nibble first) through the block's 16-entry table: the nibbles
// are widened to dwords, interleaved back into element order and looked up with a permute.
__attribute__((target("avx512f,avx512bw,avx512vl"))) void dequant32_avx512(const uint8_t* bytes, __m512 table,
                                                                            float* out) {
  const __m512i d = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes)));
  const __m512i hi = _mm512_srli_epi32(d, 4);
  const __m512i lo = _mm512_and_si512(d, _mm512_set1_epi32(15));
  const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i second = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  _mm512_storeu_ps(out, _mm512_permutexvar_ps(_mm512_permutex2var_epi32(hi, first, lo), table));
  _mm512_storeu_ps(out + 16, _mm512_permutexvar_ps(_mm512_permutex2var_epi32(hi, second, lo), table));
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) void dequant_block_avx512(const uint8_t* packed, int64_t lo,
                                                                                int64_t hi, float absmax, float* out) {
  // each lane: f32(code * absmax), the same single rounding as the scalar table
  const __m512 table = _mm512_mul_ps(_mm512_loadu_ps(NF4_CODE), _mm512_set1_ps(absmax));
  int64_t i = lo;
  for (; i + 32 <= hi; i += 32) dequant32_avx512(packed + (i >> 1), table, out + (i - lo));
  float t[16];
  _mm512_storeu_ps(t, table);
  for (; i < hi; i++) out[i - lo] = t[(packed[i >> 1] >> ((~i & 1) << 2)) & 15];
}

inline int nf4_index(float s, const std::array<float, 15>& t) {
  // the number of thresholds strictly below s (NaN -> 0), as nf4Index's binary search gives
  int c = 0;
  for (int k = 0; k < 15; k++) c += s > t[k];
  return c;
}

inline int index256(float s, const std::array<float, 255>& t) {
  int i = 0;
  for (int step = 128; step >= 1; step >>= 1) {
    if (s > t[i + step - 1]) i += step;
  }
  return i;
}

// max |x| over [start, end) with `if (a > m) m = a` semantics (a NaN never wins)
float block_max_abs(const float* x, int64_t start, int64_t end) {
  float m = 0.0f;
  for (int64_t i = start; i < end; i++) {
    const float a = std::fabs(x[i]);
    m = a > m ? a : m;
  }
  return m;
}

// Quantizes one block [start, end) and returns its absmax, as the scalar loop below does: absmax
// by max (a NaN never wins: vmaxps returns its second operand when either is NaN), then
// code = count of thresholds strictly below f32(x * r) (ordered '>' is false for NaN).
__attribute__((target("avx512f,avx512bw,avx512vl"))) float quantize_block_avx512(const float* x, int64_t start,
                                                                                  int64_t end, uint8_t* packed,
                                                                                  const std::array<float, 15>& t) {
  __m512 vm = _mm512_setzero_ps();
  int64_t i = start;
  for (; i + 16 <= end; i += 16) vm = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + i)), vm);
  float m = _mm512_reduce_max_ps(vm);
  for (; i < end; i++) {
    const float a = std::fabs(x[i]);
    m = a > m ? a : m;
  }
  const float r = m == 0.0f ? 0.0f : 1.0f / m;
  const __m512 vr = _mm512_set1_ps(r);
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  i = start;
  for (; i + 32 <= end; i += 32) {
    const __m512 s0 = _mm512_mul_ps(_mm512_loadu_ps(x + i), vr);
    const __m512 s1 = _mm512_mul_ps(_mm512_loadu_ps(x + i + 16), vr);
    __m512i c0 = _mm512_setzero_si512();
    __m512i c1 = _mm512_setzero_si512();
    for (int k = 0; k < 15; k++) {
      const __m512 tk = _mm512_set1_ps(t[k]);
      c0 = _mm512_mask_add_epi32(c0, _mm512_cmp_ps_mask(s0, tk, _CMP_GT_OQ), c0, one);
      c1 = _mm512_mask_add_epi32(c1, _mm512_cmp_ps_mask(s1, tk, _CMP_GT_OQ), c1, one);
    }
    const __m512i hi = _mm512_permutex2var_epi32(c0, even, c1);
    const __m512i lo = _mm512_permutex2var_epi32(c0, odd, c1);
    const __m512i bytes = _mm512_or_si512(_mm512_slli_epi32(hi, 4), lo);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(packed + (i >> 1)), _mm512_cvtepi32_epi8(bytes));
  }
  for (; i < end; i += 2) {
    const int hi = nf4_index(x[i] * r, t);
    const int lo = i + 1 < end ? nf4_index(x[i + 1] * r, t) : 7;
    packed[i >> 1] = static_cast<uint8_t>((hi << 4) | lo);
  }
  return m;
}

}  // namespace

float block_absmax(const Nf4Weight& w, int64_t j) {
  if (!w.absmax_q) return w.absmax[j];
  const float nested = w.nested_absmax[j / w.nested_blocksize];
  const float scaled = w.nested_map[w.absmax_q[j]] * nested;
  return scaled + w.offset;
}

void dequantize_range(const Nf4Weight& w, int64_t start, int64_t end, float* out, bool simd512) {
  const int64_t bs = w.blocksize;
  for (int64_t j = start / bs; j * bs < end; j++) {
    const float a = block_absmax(w, j);
    const int64_t lo = std::max(start, j * bs);
    const int64_t hi = std::min(end, (j + 1) * bs);
    if (simd512 && (lo & 1) == 0) {
      dequant_block_avx512(w.packed, lo, hi, a, out + (lo - start));
      continue;
    }
    float table[16];
    for (int c = 0; c < 16; c++) table[c] = NF4_CODE[c] * a;
    for (int64_t i = lo; i < hi; i++) out[i - start] = table[(w.packed[i >> 1] >> ((~i & 1) << 2)) & 15];
  }
}

}  // namespace nf4_detail

void nf4_dequantize_rows(const Nf4Weight& w, int64_t r0, int64_t r1, float* out) {
  const bool simd512 = std::strcmp(simd_level(), "avx512") == 0;
  const int64_t cols = w.cols;
  // split into row ranges; each thread writes its own part of out
  parallel_for(static_cast<size_t>(r1 - r0), std::max<int64_t>(1, 16384 / std::max<int64_t>(cols, 1)),
               [&](size_t a, size_t b) {
                 nf4_detail::dequantize_range(w, (r0 + static_cast<int64_t>(a)) * cols,
                                              (r0 + static_cast<int64_t>(b)) * cols, out + a * cols, simd512);
               });
}

void nf4_quantize(const float* values, int64_t n, int32_t blocksize, bool double_quant, int32_t nested_blocksize,
                  uint8_t* packed, float* absmax, uint8_t* absmax_q, float* nested_absmax, float* offset) {
  using namespace nf4_detail;
  const int64_t blocks = (n + blocksize - 1) / blocksize;
  std::vector<float> own;
  float* am = absmax;
  if (!am) {
    own.resize(static_cast<size_t>(blocks));
    am = own.data();
  }
  const auto& t = nf4_thresholds();
  const bool simd512 = std::strcmp(simd_level(), "avx512") == 0;
  // blocks are independent: every output byte belongs to one block (blocksize is even)
  parallel_for(static_cast<size_t>(blocks), 64, [&](size_t b0, size_t b1) {
    for (size_t b = b0; b < b1; b++) {
      const int64_t start = static_cast<int64_t>(b) * blocksize;
      const int64_t end = std::min<int64_t>(start + blocksize, n);
      if (simd512) {
        am[b] = quantize_block_avx512(values, start, end, packed, t);
        continue;
      }
      const float m = block_max_abs(values, start, end);
      am[b] = m;
      const float r = m == 0.0f ? 0.0f : 1.0f / m;
      for (int64_t i = start; i < end; i += 2) {
        const int hi = nf4_index(values[i] * r, t);
        const int lo = i + 1 < end ? nf4_index(values[i + 1] * r, t) : 7;
        packed[i >> 1] = static_cast<uint8_t>((hi << 4) | lo);
      }
    }
  });
  if (!double_quant) {
    if (offset) *offset = 0.0f;
    return;
  }
  // offset: the mean in double, summed in order (so the same on any thread count), rounded once
  double sum = 0.0;
  for (int64_t b = 0; b < blocks; b++) sum += am[b];
  const float off = blocks == 0 ? 0.0f : static_cast<float>(sum / static_cast<double>(blocks));
  if (offset) *offset = off;
  const auto& dt = dynamic_thresholds();
  const int64_t nested_blocks = (blocks + nested_blocksize - 1) / nested_blocksize;
  parallel_for(static_cast<size_t>(nested_blocks), 16, [&](size_t q0, size_t q1) {
    for (size_t q = q0; q < q1; q++) {
      const int64_t start = static_cast<int64_t>(q) * nested_blocksize;
      const int64_t end = std::min<int64_t>(start + nested_blocksize, blocks);
      float m = 0.0f;
      for (int64_t j = start; j < end; j++) {
        const float a = std::fabs(am[j] - off);
        m = a > m ? a : m;
      }
      nested_absmax[q] = m;
      const float r = m == 0.0f ? 0.0f : 1.0f / m;
      for (int64_t j = start; j < end; j++) absmax_q[j] = static_cast<uint8_t>(index256((am[j] - off) * r, dt));
    }
  });
}

}  // namespace ditty::cpu
