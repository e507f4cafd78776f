// The host side of an AdamW step and of the gradient sum of squares that both devices share
// (ditty::cpu in native/cpu/adamw.cpp, ditty::cuda in native/cuda/kernels/adamw.cu), which must
// give the same bits: the step's float constants and the sum's blocking.
#pragma once
#include <cmath>
#include <cstdint>

namespace ditty {

// The constants of one AdamW step, each rounded to float once, as tfjs makes them scalar tensors
// (src/runtime/tfjs-adamw.ts).
struct AdamwConsts {
  float b1, one_minus_b1, b2, one_minus_b2, decay, bc2_sqrt, eps, step_size;
  bool decays;
};

// The constants at 1-based `step`, formed in double from the JS numbers (1 - beta1,
// lr / (1 - beta1^step), ...) as the tfjs engine forms them.
inline AdamwConsts adamw_consts(double lr, double beta1, double beta2, double eps, double weight_decay, int64_t step) {
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
  return k;
}

// sum_squares adds fixed blocks of this many values (a multiple of 16: within a block lane j of 16
// sums the values i = j mod 16, then simd::tree16 adds the lanes), then the block sums in order.
inline constexpr int64_t kSumSquaresBlock = int64_t{1} << 14;

}  // namespace ditty
