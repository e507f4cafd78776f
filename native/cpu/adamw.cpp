// The optimizer step and the gradient-norm reduction over LoRA tensors.
#include <algorithm>
#include <cmath>
#include <vector>

#include "common_simd.h"
#include "ditty/common.h"
#include "ditty/parallel.h"

namespace ditty::cpu {
namespace {
// Constants of one step, each rounded to float once, as tfjs makes them scalar tensors.
struct AdamwConsts {
  float b1, one_minus_b1, b2, one_minus_b2, decay, bc2_sqrt, eps, step_size;
  bool decays;
};

#define DITTY_SIMD_BODY "adamw.inc"
#include "common_simd_instantiate.h"

constexpr size_t kGrain = 1 << 15;
// sum_squares adds fixed blocks of this many values (a multiple of 16), then the block sums in order
constexpr int64_t kSumBlock = 1 << 14;
}  // namespace

void adamw_step(float* p, const float* g, float* m, float* v, int64_t n, double lr, double beta1, double beta2,
                double eps, double weight_decay, int64_t step) {
  const double t = static_cast<double>(step);
  AdamwConsts k{};
  k.b1 = static_cast<float>(beta1);
  k.one_minus_b1 = static_cast<float>(1 - beta1);
  k.b2 = static_cast<float>(beta2);
  k.one_minus_b2 = static_cast<float>(1 - beta2);
  k.decays = weight_decay > 0;
  k.decay = static_cast<float>(1 - lr * weight_decay);
  k.bc2_sqrt = static_cast<float>(std::sqrt(1 - std::pow(beta2, t)));
  k.eps = static_cast<float>(eps);
  k.step_size = static_cast<float>(lr / (1 - std::pow(beta1, t)));
  simd::Level lvl = simd::level();
  parallel_for(static_cast<size_t>(n), kGrain, [&](size_t i0, size_t i1) {
    DITTY_SIMD_DISPATCH(lvl, adamw_range, p + i0, g + i0, m + i0, v + i0, static_cast<int64_t>(i1 - i0), k);
  });
}

double sum_squares(const float* x, int64_t n) {
  const int64_t blocks = (n + kSumBlock - 1) / kSumBlock;
  std::vector<double> partial(static_cast<size_t>(blocks));
  simd::Level lvl = simd::level();
  parallel_for(static_cast<size_t>(blocks), 1, [&](size_t b0, size_t b1) {
    for (size_t b = b0; b < b1; b++) {
      int64_t i0 = static_cast<int64_t>(b) * kSumBlock;
      int64_t len = std::min(kSumBlock, n - i0);
      DITTY_SIMD_DISPATCH(lvl, sum_squares_range, x + i0, len, &partial[b]);
    }
  });
  double total = 0;
  for (double s : partial) total += s;
  return total;
}

}  // namespace ditty::cpu
