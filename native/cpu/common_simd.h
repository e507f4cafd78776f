// Vector wrappers for the memory-bound kernels of the common and rwkv families. Each kernel body is
// written once against a type `V` (width V::W floats) and compiled three times: for AVX-512
// (16 lanes), AVX2+FMA (8 lanes) and a portable build (1 lane, plain float code), each inside its
// own `#pragma GCC target` region so that the rest of the addon stays baseline x86-64 (see
// common_simd_regions.h). The path is chosen on every call from ditty::simd_level(), so
// DITTY_SIMD=avx2|portable switches it even inside a running process (the tests do that).
//
// Reductions that must not depend on the path or the thread count use DAcc: 16 double lanes, lane j
// summing the elements i = j (mod 16) of its block, in order; total() adds the lanes in a fixed tree.
// AVX-512 holds them in two registers, AVX2 in four, the portable path in an array, so every path
// produces the same bits.
#pragma once
// Every multiply-add below is fused or not by choice (V::fmadd), never by the compiler: AdamW and
// the token-shift mix must round after each operation as tfjs does.
#pragma GCC optimize("fp-contract=off")
// GCC 12 reports the deliberately undefined pass-through operand of some AVX-512 intrinsics
// (_mm512_undefined_ps in _mm512_sqrt_ps, _mm512_cvtps_pd) as maybe-uninitialized: a false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// (DITTY_NO_X86_SIMD builds the non-x86 variant on x86, to check that it compiles)
#if (defined(__x86_64__) || defined(__i386__)) && !defined(DITTY_NO_X86_SIMD)
#define DITTY_SIMD_X86 1
#include <immintrin.h>
#else
#define DITTY_SIMD_X86 0  // elsewhere only the portable path is compiled (simd_level() is "portable")
#endif

#include <cmath>
#include <cstdint>
#include <cstring>

#include "ditty/cpu_features.h"

namespace ditty::cpu::simd {

enum class Level { Portable, Avx2, Avx512 };

inline Level level() {
  const char* s = ditty::simd_level();
  if (std::strcmp(s, "avx512") == 0) return Level::Avx512;
  if (std::strcmp(s, "avx2") == 0) return Level::Avx2;
  return Level::Portable;
}

// Flushes denormal results and operands to zero on this thread while in scope (MXCSR FTZ + DAZ).
// Recurrences that multiply by e^-|d| (WKV) produce values below 1.2e-38 that would otherwise
// run through microcode at ~100x the cost; GPUs flush them too. Values that small are zero to
// every tolerance here.
#if DITTY_SIMD_X86
class FlushDenormals {
 public:
  FlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040u); }
  ~FlushDenormals() { _mm_setcsr(saved_); }
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;

 private:
  unsigned saved_;
};
#else
struct FlushDenormals {  // slower on denormals, same results to every tolerance
  FlushDenormals() {}      // user-provided: a guard variable is then not "unused"
};
#endif

// exp's polynomial (Cephes expf): |error| <= 2 ulp on [-87.3, 88.0]; below ln(FLT_MIN) it returns 0
// (the true value is a denormal under 1.2e-38), above 88.02 (= 127 ln 2) it saturates at 1.6e38.
constexpr float kExpHi = 88.02f;
constexpr float kExpLo = -87.3365447505531f;  // ln(FLT_MIN)
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = -2.12194440e-4f;
constexpr float kExpP0 = 1.9875691500e-4f, kExpP1 = 1.3981999507e-3f, kExpP2 = 8.3334519073e-3f,
                kExpP3 = 4.1665795894e-2f, kExpP4 = 1.6666665459e-1f, kExpP5 = 5.0000001201e-1f;

// Adds the 16 lanes in a fixed tree: ((0+8)+(4+12)) + ... so every path agrees.
inline double tree16(const double* l) {
  double h[8];
  for (int i = 0; i < 8; i++) h[i] = l[i] + l[i + 8];
  double q[4];
  for (int i = 0; i < 4; i++) q[i] = h[i] + h[i + 4];
  return (q[0] + q[2]) + (q[1] + q[3]);
}

// One lane: plain float arithmetic, std::exp; what a machine without AVX2 runs.
struct Scalar {
  using T = float;
  static constexpr int W = 1;
  static T load(const float* p) { return *p; }
  static void store(float* p, T v) { *p = v; }
  static T load_n(const float* p, int) { return *p; }
  static void store_n(float* p, T v, int) { *p = v; }
  static T set1(float x) { return x; }
  static T zero() { return 0.0f; }
  static T add(T a, T b) { return a + b; }
  static T sub(T a, T b) { return a - b; }
  static T mul(T a, T b) { return a * b; }
  static T div(T a, T b) { return a / b; }
  static T fmadd(T a, T b, T c) { return a * b + c; }  // not fused: the portable path has no FMA
  static T max(T a, T b) { return a > b ? a : b; }
  static T min(T a, T b) { return a < b ? a : b; }
  static T abs(T a) { return std::fabs(a); }
  static T neg(T a) { return -a; }
  static T sqrt(T a) { return std::sqrt(a); }
  // the same polynomial as the vector paths, inline (a libm call per element costs more than the
  // arithmetic around it in WKV); truncating conversions only, so baseline x86-64 has all it needs
  static T exp(T x) {
    if (!(x >= kExpLo)) return 0.0f;  // (NaN -> 0 too)
    x = x < kExpHi ? x : kExpHi;
    const float t = x * kLog2e;
    const int n = static_cast<int>(t + (t >= 0.0f ? 0.5f : -0.5f));  // round half away from zero
    const float nf = static_cast<float>(n);
    float r = x - nf * kLn2Hi;
    r = r - nf * kLn2Lo;
    float y = kExpP0;
    y = y * r + kExpP1;
    y = y * r + kExpP2;
    y = y * r + kExpP3;
    y = y * r + kExpP4;
    y = y * r + kExpP5;
    y = y * (r * r) + (r + 1.0f);
    const uint32_t bits = static_cast<uint32_t>(n + 127) << 23;  // n in [-126, 127]
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return y * scale;
  }
  static T relu(T a) { return a > 0.0f ? a : 0.0f; }
  // a >= 0 ? x : y
  static T select_nonneg(T a, T x, T y) { return a >= 0.0f ? x : y; }

  struct DAcc {
    double l[16];
  };
  static DAcc dzero() { return DAcc{}; }
  // acc += f(p[0..16)) lane by lane
  template <class F>
  static void dadd16(DAcc& a, const float* p, F f) {
    for (int j = 0; j < 16; j++) a.l[j] += f(static_cast<double>(p[j]));
  }
  static void dadd_sq(DAcc& a, const float* p) {
    dadd16(a, p, [](double x) { return x * x; });
  }
  static void dadd(DAcc& a, const float* p) {
    dadd16(a, p, [](double x) { return x; });
  }
  static void dadd_prod(DAcc& a, const float* p, const float* q) {
    for (int j = 0; j < 16; j++) a.l[j] += static_cast<double>(p[j]) * static_cast<double>(q[j]);
  }
  // s1 += x - shift, s2 += (x - shift)^2
  static void dadd_shifted(DAcc& s1, DAcc& s2, const float* p, double shift) {
    for (int j = 0; j < 16; j++) {
      double d = static_cast<double>(p[j]) - shift;
      s1.l[j] += d;
      s2.l[j] += d * d;
    }
  }
  static void dstore(const DAcc& a, double* out) { std::memcpy(out, a.l, sizeof a.l); }
};

#if DITTY_SIMD_X86
#pragma GCC push_options
#pragma GCC target("avx2,fma")

struct Avx2 {
  using T = __m256;
  static constexpr int W = 8;
  static __m256i mask(int n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
  static T load_n(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static void store_n(float* p, T v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  static T set1(float x) { return _mm256_set1_ps(x); }
  static T zero() { return _mm256_setzero_ps(); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
  static T sub(T a, T b) { return _mm256_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static T div(T a, T b) { return _mm256_div_ps(a, b); }
  static T fmadd(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T max(T a, T b) { return _mm256_max_ps(a, b); }
  static T min(T a, T b) { return _mm256_min_ps(a, b); }
  static T abs(T a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static T neg(T a) { return _mm256_xor_ps(a, _mm256_set1_ps(-0.0f)); }
  static T sqrt(T a) { return _mm256_sqrt_ps(a); }
  static T relu(T a) { return _mm256_max_ps(a, _mm256_setzero_ps()); }
  static T select_nonneg(T a, T x, T y) { return _mm256_blendv_ps(x, y, _mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_LT_OQ)); }
  static T exp(T x) {
    T under = _mm256_cmp_ps(x, _mm256_set1_ps(kExpLo), _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(kExpLo)), _mm256_set1_ps(kExpHi));
    T n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    T r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
    T y = _mm256_set1_ps(kExpP0);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(kExpP1));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(kExpP2));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(kExpP3));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(kExpP4));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(kExpP5));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    // n is in [-126, 127]: 2^n is a normal float built from its exponent field
    __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(e, 23)));
    return _mm256_andnot_ps(under, y);
  }

  struct DAcc {
    __m256d r[4];
  };
  static DAcc dzero() { return DAcc{{_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()}}; }
  static void dadd_sq(DAcc& a, const float* p) {
    for (int j = 0; j < 4; j++) {
      __m256d x = _mm256_cvtps_pd(_mm_loadu_ps(p + 4 * j));
      a.r[j] = _mm256_fmadd_pd(x, x, a.r[j]);  // x*x is exact in double: fused or not, the same bits
    }
  }
  static void dadd(DAcc& a, const float* p) {
    for (int j = 0; j < 4; j++) a.r[j] = _mm256_add_pd(a.r[j], _mm256_cvtps_pd(_mm_loadu_ps(p + 4 * j)));
  }
  static void dadd_prod(DAcc& a, const float* p, const float* q) {
    for (int j = 0; j < 4; j++) {
      a.r[j] = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(p + 4 * j)), _mm256_cvtps_pd(_mm_loadu_ps(q + 4 * j)), a.r[j]);
    }
  }
  static void dadd_shifted(DAcc& s1, DAcc& s2, const float* p, double shift) {
    __m256d sv = _mm256_set1_pd(shift);
    for (int j = 0; j < 4; j++) {
      __m256d d = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(p + 4 * j)), sv);
      s1.r[j] = _mm256_add_pd(s1.r[j], d);
      s2.r[j] = _mm256_add_pd(s2.r[j], _mm256_mul_pd(d, d));
    }
  }
  static void dstore(const DAcc& a, double* out) {
    for (int j = 0; j < 4; j++) _mm256_storeu_pd(out + 4 * j, a.r[j]);
  }
};

#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma")

struct Avx512 {
  using T = __m512;
  static constexpr int W = 16;
  static __mmask16 mask(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, T v) { _mm512_storeu_ps(p, v); }
  static T load_n(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static void store_n(float* p, T v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  static T set1(float x) { return _mm512_set1_ps(x); }
  static T zero() { return _mm512_setzero_ps(); }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
  static T sub(T a, T b) { return _mm512_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static T div(T a, T b) { return _mm512_div_ps(a, b); }
  static T fmadd(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T max(T a, T b) { return _mm512_max_ps(a, b); }
  static T min(T a, T b) { return _mm512_min_ps(a, b); }
  static T abs(T a) { return _mm512_abs_ps(a); }
  static T neg(T a) { return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), _mm512_set1_epi32(INT32_MIN))); }
  static T sqrt(T a) { return _mm512_sqrt_ps(a); }
  static T relu(T a) { return _mm512_max_ps(a, _mm512_setzero_ps()); }
  static T select_nonneg(T a, T x, T y) { return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_LT_OQ), x, y); }
  static T exp(T x) {
    __mmask16 under = _mm512_cmp_ps_mask(x, _mm512_set1_ps(kExpLo), _CMP_LT_OQ);
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(kExpLo)), _mm512_set1_ps(kExpHi));
    T n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    T r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), r);
    T y = _mm512_set1_ps(kExpP0);
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(kExpP1));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(kExpP2));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(kExpP3));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(kExpP4));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(kExpP5));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    y = _mm512_scalef_ps(y, n);  // y * 2^n without building an exponent field
    return _mm512_maskz_mov_ps(static_cast<__mmask16>(~under), y);
  }

  struct DAcc {
    __m512d r[2];
  };
  static DAcc dzero() { return DAcc{{_mm512_setzero_pd(), _mm512_setzero_pd()}}; }
  static void dadd_sq(DAcc& a, const float* p) {
    for (int j = 0; j < 2; j++) {
      __m512d x = _mm512_cvtps_pd(_mm256_loadu_ps(p + 8 * j));
      a.r[j] = _mm512_fmadd_pd(x, x, a.r[j]);
    }
  }
  static void dadd(DAcc& a, const float* p) {
    for (int j = 0; j < 2; j++) a.r[j] = _mm512_add_pd(a.r[j], _mm512_cvtps_pd(_mm256_loadu_ps(p + 8 * j)));
  }
  static void dadd_prod(DAcc& a, const float* p, const float* q) {
    for (int j = 0; j < 2; j++) {
      a.r[j] = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm256_loadu_ps(p + 8 * j)), _mm512_cvtps_pd(_mm256_loadu_ps(q + 8 * j)), a.r[j]);
    }
  }
  static void dadd_shifted(DAcc& s1, DAcc& s2, const float* p, double shift) {
    __m512d sv = _mm512_set1_pd(shift);
    for (int j = 0; j < 2; j++) {
      __m512d d = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(p + 8 * j)), sv);
      s1.r[j] = _mm512_add_pd(s1.r[j], d);
      s2.r[j] = _mm512_add_pd(s2.r[j], _mm512_mul_pd(d, d));
    }
  }
  static void dstore(const DAcc& a, double* out) {
    for (int j = 0; j < 2; j++) _mm512_storeu_pd(out + 8 * j, a.r[j]);
  }
};

#pragma GCC pop_options
#endif  // DITTY_SIMD_X86

}  // namespace ditty::cpu::simd

// Calls portable::fn, avx2::fn or avx512::fn (the namespaces common_simd_instantiate.h fills) for
// the simd::Level `lvl` (read once per kernel call with simd::level()).
#if DITTY_SIMD_X86
#define DITTY_SIMD_DISPATCH(lvl, fn, ...)                                                    \
  do {                                                                                       \
    switch (lvl) {                                                                           \
      case ::ditty::cpu::simd::Level::Avx512: avx512::fn(__VA_ARGS__); break;                \
      case ::ditty::cpu::simd::Level::Avx2: avx2::fn(__VA_ARGS__); break;                    \
      default: portable::fn(__VA_ARGS__); break;                                             \
    }                                                                                        \
  } while (0)
#else
#define DITTY_SIMD_DISPATCH(lvl, fn, ...) \
  do {                                    \
    (void)(lvl);                          \
    portable::fn(__VA_ARGS__);            \
  } while (0)
#endif
