// RWKV-4 WKV forward (with an optional decoding state) and backward for dk, dv, in the stable
// (aa, bb, pp) form of src/engine/wkv.ts. Work is split over (batch row, block of V::W channels);
// each channel's recurrence runs on one lane in order, so results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "common_simd.h"
#include "ditty/parallel.h"
#include "ditty/rwkv.h"

namespace ditty::cpu {
namespace {
#define DITTY_SIMD_BODY "rwkv_wkv.inc"
#include "common_simd_instantiate.h"

int lanes(simd::Level lvl) {
  switch (lvl) {
    case simd::Level::Avx512: return avx512::width();
    case simd::Level::Avx2: return avx2::width();
    default: return portable::width();
  }
}

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
  const int64_t tasks = B * ((C + lanes(lvl) - 1) / lanes(lvl));
  std::vector<float> w = decay_of(time_decay, C);
  parallel_for(static_cast<size_t>(tasks), 1, [&](size_t t0, size_t t1) {
    DITTY_SIMD_DISPATCH(lvl, wkv_forward_tasks, w.data(), time_first, k, v, B, T, C, y, state, static_cast<int64_t>(t0),
                        static_cast<int64_t>(t1));
  });
}

void wkv_backward(const float* time_decay, const float* time_first, const float* k, const float* v,
                  const float* dy, int64_t B, int64_t T, int64_t C, float* dk, float* dv) {
  simd::Level lvl = simd::level();
  const int64_t W = lanes(lvl);
  const int64_t tasks = B * ((C + W - 1) / W);
  std::vector<float> w = decay_of(time_decay, C);
  parallel_for(static_cast<size_t>(tasks), 1, [&](size_t t0, size_t t1) {
    std::vector<float> scratch(static_cast<size_t>(2 * T * W));
    DITTY_SIMD_DISPATCH(lvl, wkv_backward_tasks, w.data(), time_first, k, v, dy, T, C, dk, dv, scratch.data(),
                        static_cast<int64_t>(t0), static_cast<int64_t>(t1));
  });
}

}  // namespace ditty::cpu
