// Layer norm forward and input gradient (weight and bias frozen), parallel over rows: each row's
// statistics are summed by one thread in a fixed order, so results do not depend on the thread count.
#include <algorithm>

#include "common_simd.h"
#include "ditty/common.h"
#include "ditty/parallel.h"

namespace ditty::cpu {
namespace {
#define DITTY_SIMD_BODY "common_layernorm.inc"
#include "common_simd_instantiate.h"

// rows per chunk: about 32K floats of work
size_t row_grain(int64_t C) { return std::max<size_t>(1, (size_t{1} << 15) / static_cast<size_t>(std::max<int64_t>(C, 1))); }
}  // namespace

void layernorm_forward(const float* x, const float* w, const float* b, int64_t N, int64_t C, float eps, float* out,
                       float* mean, float* rstd) {
  simd::Level lvl = simd::level();
  parallel_for(static_cast<size_t>(N), row_grain(C), [&](size_t r0, size_t r1) {
    DITTY_SIMD_DISPATCH(lvl, layernorm_forward_rows, x, w, b, static_cast<int64_t>(r0), static_cast<int64_t>(r1), C, eps,
                        out, mean, rstd);
  });
}

void layernorm_backward(const float* dy, const float* x, const float* w, const float* mean, const float* rstd,
                        int64_t N, int64_t C, float* dx, bool accumulate) {
  simd::Level lvl = simd::level();
  parallel_for(static_cast<size_t>(N), row_grain(C), [&](size_t r0, size_t r1) {
    DITTY_SIMD_DISPATCH(lvl, layernorm_backward_rows, dy, x, w, mean, rstd, static_cast<int64_t>(r0),
                        static_cast<int64_t>(r1), C, dx, accumulate);
  });
}

}  // namespace ditty::cpu
