// The neox kernels on plain floats (one lane, libm's exp/erf/tanh): the fallback on any CPU and the
// path the tests hold the vector paths to.
#include <cmath>
#include <cstdint>

#include "neox_internal.h"

namespace {

struct Scalar {
  using T = float;
  static constexpr int W = 1, MR = 4, NV = 4;
  static T zero() { return 0.0f; }
  static T set1(float x) { return x; }
  static T load(const float* p) { return *p; }
  static T loadn(const float*, int, float fill) { return fill; }  // n < W = 1: no lane is loaded
  static void store(float* p, T v) { *p = v; }
  static void storen(float*, T, int) {}
  static T add(T a, T b) { return a + b; }
  static T sub(T a, T b) { return a - b; }
  static T mul(T a, T b) { return a * b; }
  static T div(T a, T b) { return a / b; }
  static T fma(T a, T b, T c) { return a * b + c; }
  static T max(T a, T b) { return a < b ? b : a; }
  static T min(T a, T b) { return b < a ? b : a; }
  static T abs(T a) { return std::fabs(a); }
  static T select_lt(T a, T b, T x, T y) { return a < b ? x : y; }
  static T round(T a) { return std::nearbyint(a); }
  static T pow2n(T n) { return std::ldexp(1.0f, static_cast<int>(n)); }
  static T copysign(T mag, T s) { return std::copysign(mag, s); }
  static float hsum(T a) { return a; }
  static float hmax(T a) { return a; }
};

}  // namespace

#include "neox_kernels.h"

namespace ditty::cpu::neox_detail {
const Kernels kPortable = kernels<Scalar>();
}  // namespace ditty::cpu::neox_detail
