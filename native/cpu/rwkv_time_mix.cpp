// RWKV-4 token shift + time mix, forward for all mixes of a block at once and backward into dx;
// parallel over (batch, position) rows, each written by one thread.
#include <algorithm>

#include "common_simd.h"
#include "ditty/parallel.h"
#include "ditty/rwkv.h"

namespace ditty::cpu {
namespace {
#define DITTY_SIMD_BODY "rwkv_time_mix.inc"
#include "common_simd_instantiate.h"

size_t row_grain(int64_t C) { return std::max<size_t>(1, (size_t{1} << 14) / static_cast<size_t>(std::max<int64_t>(C, 1))); }
}  // namespace

void time_mix_forward(const float* x, const float* state, int64_t B, int64_t T, int64_t C, const float* const* mixes,
                      int n_mix, float* const* outs) {
  simd::Level lvl = simd::level();
  parallel_for(static_cast<size_t>(B * T), row_grain(C * n_mix), [&](size_t r0, size_t r1) {
    DITTY_SIMD_DISPATCH(lvl, time_mix_forward_rows, x, state, T, C, mixes, n_mix, outs, static_cast<int64_t>(r0),
                        static_cast<int64_t>(r1));
  });
}

void time_mix_backward(const float* const* douts, const float* const* mixes, int n_mix, int64_t B, int64_t T,
                       int64_t C, float* dx, bool accumulate) {
  simd::Level lvl = simd::level();
  parallel_for(static_cast<size_t>(B * T), row_grain(C * n_mix), [&](size_t r0, size_t r1) {
    DITTY_SIMD_DISPATCH(lvl, time_mix_backward_rows, douts, mixes, n_mix, T, C, dx, accumulate, static_cast<int64_t>(r0),
                        static_cast<int64_t>(r1));
  });
}

}  // namespace ditty::cpu
