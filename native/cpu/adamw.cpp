// The optimizer step and the gradient-norm reduction over LoRA tensors.
#include <algorithm>
#include <vector>

#include "common_simd.h"
#include "ditty/adamw_consts.h"
#include "ditty/common.h"
#include "ditty/parallel.h"

namespace ditty::cpu {
namespace {
#define DITTY_SIMD_BODY "adamw.inc"
#include "common_simd_instantiate.h"

constexpr size_t kGrain = 1 << 15;
}  // namespace

void adamw_step(float* p, const float* g, float* m, float* v, int64_t n, double lr, double beta1, double beta2,
                double eps, double weight_decay, int64_t step) {
  const AdamwConsts k = adamw_consts(lr, beta1, beta2, eps, weight_decay, step);
  simd::Level lvl = simd::level();
  parallel_for(static_cast<size_t>(n), kGrain, [&](size_t i0, size_t i1) {
    DITTY_SIMD_DISPATCH(lvl, adamw_range, p + i0, g + i0, m + i0, v + i0, static_cast<int64_t>(i1 - i0), k);
  });
}

double sum_squares(const float* x, int64_t n) {
  const int64_t blocks = (n + kSumSquaresBlock - 1) / kSumSquaresBlock;
  std::vector<double> partial(static_cast<size_t>(blocks));
  simd::Level lvl = simd::level();
  parallel_for(static_cast<size_t>(blocks), 1, [&](size_t b0, size_t b1) {
    for (size_t b = b0; b < b1; b++) {
      int64_t i0 = static_cast<int64_t>(b) * kSumSquaresBlock;
      int64_t len = std::min(kSumSquaresBlock, n - i0);
      DITTY_SIMD_DISPATCH(lvl, sum_squares_range, x + i0, len, &partial[b]);
    }
  });
  double total = 0;
  for (double s : partial) total += s;
  return total;
}

}  // namespace ditty::cpu
