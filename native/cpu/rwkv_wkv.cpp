// RWKV-4 WKV forward (with an optional decoding state) and backward for dk, dv, in the stable
// (aa, bb, pp) form of src/engine/wkv.ts. Work is split over (batch row, group of channels);
// each channel's recurrence runs on one lane in order, so results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "common_simd.h"
#include "ditty/parallel.h"
#include "ditty/rwkv.h"

namespace ditty::cpu {
namespace {
// Channels per task (multiples of every path's width). Forward takes up to 256 (fewer when that
// leaves under 4 tasks per thread); backward keeps 2 T floats per channel of scratch: 256 KiB for
// 64 channels at T = 512, inside L2.
constexpr int64_t kForwardGroup = 256;
constexpr int64_t kBackwardGroup = 64;

int64_t forward_group(int64_t B, int64_t C) {
  int64_t g = kForwardGroup;
  const int64_t want = 4 * static_cast<int64_t>(thread_count());
  while (g > 64 && B * ((C + g - 1) / g) < want) g /= 2;
  return g;
}

#define DITTY_SIMD_BODY "rwkv_wkv.inc"
#include "common_simd_instantiate.h"

// w = -exp(time_decay), once per channel in float as the tfjs model computes it
std::vector<float> decay_of(const float* time_decay, int64_t C) {
  std::vector<float> w(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; c++) w[c] = -std::exp(time_decay[c]);
  return w;
}
}  // namespace

void wkv_forward(const float* time_decay, const float* time_first, const float* k, const float* v, int64_t B,
                 int64_t T, int64_t C, float* y, float* state) {
  simd::Level lvl = simd::level();
  const int64_t group = forward_group(B, C);
  const int64_t tasks = B * ((C + group - 1) / group);
  std::vector<float> w = decay_of(time_decay, C);
  parallel_for(static_cast<size_t>(tasks), 1, [&](size_t t0, size_t t1) {
    simd::FlushDenormals ftz;
    DITTY_SIMD_DISPATCH(lvl, wkv_forward_tasks, w.data(), time_first, k, v, B, T, C, group, y, state, static_cast<int64_t>(t0),
                        static_cast<int64_t>(t1));
  });
}

void wkv_backward(const float* time_decay, const float* time_first, const float* k, const float* v,
                  const float* dy, int64_t B, int64_t T, int64_t C, float* dk, float* dv) {
  simd::Level lvl = simd::level();
  const int64_t tasks = B * ((C + kBackwardGroup - 1) / kBackwardGroup);
  std::vector<float> w = decay_of(time_decay, C);
  parallel_for(static_cast<size_t>(tasks), 1, [&](size_t t0, size_t t1) {
    simd::FlushDenormals ftz;
    // written by the forward sweep before the reverse sweep reads it: no need to zero it
    std::unique_ptr<float[]> scratch(new float[static_cast<size_t>(2 * T * kBackwardGroup)]);
    DITTY_SIMD_DISPATCH(lvl, wkv_backward_tasks, w.data(), time_first, k, v, dy, T, C, dk, dv, scratch.get(),
                        static_cast<int64_t>(t0), static_cast<int64_t>(t1));
  });
}

}  // namespace ditty::cpu
