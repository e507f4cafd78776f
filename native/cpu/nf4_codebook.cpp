#include "nf4_codebook.h"

#include <algorithm>
#include <vector>

#include "ditty/nf4.h"

namespace ditty::cpu {

const float NF4_CODE[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
};

namespace nf4_detail {
namespace {

// Every operation below is a single float32 operation (the build is ISO C++, so nothing is
// contracted into an FMA), mirroring the Math.fround steps of the TypeScript.
template <size_t N>
std::array<float, N - 1> midpoints(const std::array<float, N>& code) {
  std::array<float, N - 1> out{};
  for (size_t i = 0; i + 1 < N; i++) out[i] = (code[i] + code[i + 1]) / 2.0f;
  return out;
}

// torch CPU linspace(start, end, steps) in float32, without FMA
std::vector<float> linspace_f32(float a, float b, int steps) {
  std::vector<float> out(steps);
  const float step = (b - a) / static_cast<float>(steps - 1);
  const int half = steps >> 1;
  for (int i = 0; i < steps; i++) {
    out[i] = i < half ? a + step * static_cast<float>(i) : b - step * static_cast<float>(steps - 1 - i);
  }
  return out;
}

}  // namespace

const std::array<float, 15>& nf4_thresholds() {
  static const std::array<float, 15> t = [] {
    std::array<float, 16> code{};
    std::copy(NF4_CODE, NF4_CODE + 16, code.begin());
    return midpoints(code);
  }();
  return t;
}

const std::array<float, 256>& dynamic_map() {
  static const std::array<float, 256> map = [] {
    // correctly rounded decimal powers, as literals
    const double pow10[] = {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1};
    std::vector<float> values;
    for (int k = 0; k < 7; k++) {
      std::vector<float> bounds = linspace_f32(0.1f, 1.0f, (1 << k) + 1);
      const float scale = static_cast<float>(pow10[k]);
      for (size_t i = 0; i + 1 < bounds.size(); i++) {
        const float mean = (bounds[i] + bounds[i + 1]) / 2.0f;
        const float v = scale * mean;
        values.push_back(v);
        values.push_back(-v);
      }
    }
    values.push_back(0.0f);
    values.push_back(1.0f);
    std::sort(values.begin(), values.end());
    std::array<float, 256> out{};
    std::copy(values.begin(), values.end(), out.begin());
    return out;
  }();
  return map;
}

const std::array<float, 255>& dynamic_thresholds() {
  static const std::array<float, 255> t = midpoints(dynamic_map());
  return t;
}

}  // namespace nf4_detail
}  // namespace ditty::cpu
