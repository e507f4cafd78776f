// AdamW, the gradient sum of squares and global-norm clipping on the device (ditty/cuda/common.h)
// against the CPU twins (ditty/common.h), all bitwise: adamw_step (several steps, with and without
// weight decay, the finite-gate), sum_squares (the CPU's blocking and lane order, sizes around the
// 16384-value block), clip_by_norm (the adapters' host arithmetic); odd sizes, aligned and
// misaligned pointers, every output bitwise equal under every schedule.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "ditty/common.h"
#include "ditty/cuda/common.h"
#include "ditty/cuda/testing.h"

namespace t = ditty::cuda::testing;

namespace {

using t::expect_bits;
using t::place;
using t::refill;

struct Settings {
  double lr, beta1, beta2, eps, weight_decay;
};

void adamw_case(int64_t n, const Settings& s, int64_t off, uint64_t seed) {
  const std::string what = "adamw n" + std::to_string(n) + " wd" + std::to_string(s.weight_decay) +
                           (off ? " misaligned" : "");
  auto p = t::normal(n, 0.1f, seed), m = t::normal(n, 1e-3f, seed + 1), v = t::uniform(n, 0.0f, 1e-5f, seed + 2);
  std::vector<std::vector<float>> grads;
  for (int k = 0; k < 4; k++) grads.push_back(t::normal(n, k == 3 ? 1e-20f : 1e-2f, seed + 3 + k));  // tiny: denormal v
  auto dp = place(p, off), dm = place(m, off), dv = place(v, off), dg = place(grads[0], off);
  // the CPU: steps 1..4
  std::vector<float> wp = p, wm = m, wv = v;
  for (int k = 0; k < 4; k++) {
    ditty::cpu::adamw_step(wp.data(), grads[k].data(), wm.data(), wv.data(), n, s.lr, s.beta1, s.beta2, s.eps,
                           s.weight_decay, k + 1);
  }
  const auto got = t::same_under_all_schedules(what, [&] {
    refill(dp, p);
    refill(dm, m);
    refill(dv, v);
    for (int k = 0; k < 4; k++) {
      refill(dg, grads[k]);
      ditty::cuda::adamw_step(dp.get(), dg.get(), dm.get(), dv.get(), n, s.lr, s.beta1, s.beta2, s.eps,
                              s.weight_decay, k + 1, nullptr, nullptr);
    }
    return std::make_tuple(t::download(dp.get(), n), t::download(dm.get(), n), t::download(dv.get(), n));
  });
  expect_bits(what + " p", std::get<0>(got), wp);
  expect_bits(what + " m", std::get<1>(got), wm);
  expect_bits(what + " v", std::get<2>(got), wv);
}

DITTY_TEST(adamw) {
  uint64_t seed = 1;
  const std::vector<Settings> settings = {{1e-3, 0.9, 0.999, 1e-8, 0.0}, {3e-4, 0.9, 0.95, 1e-6, 0.01}};
  for (int64_t n : {1, 7, 33, 257, 1031, 4099}) {
    for (const Settings& s : settings) {
      for (int64_t off : {0, 1}) adamw_case(n, s, off, seed += 10);
    }
  }
}

// the gate: a non-finite sum of squares skips the step, a finite one takes it
DITTY_TEST(adamw_gate) {
  const int64_t n = 33;
  const auto p = t::normal(n, 0.1f, 5), g = t::normal(n, 0.1f, 6);
  const std::vector<float> zeros(n, 0.0f);
  for (double gate : {1.0, static_cast<double>(INFINITY), static_cast<double>(NAN)}) {
    auto dp = t::upload(p), dg = t::upload(g), dm = t::upload(zeros), dv = t::upload(zeros);
    auto dgate = t::upload(std::vector<double>{gate});
    ditty::cuda::adamw_step(dp.get(), dg.get(), dm.get(), dv.get(), n, 1e-3, 0.9, 0.999, 1e-8, 0.0, 1, dgate.get(),
                            nullptr);
    std::vector<float> want = p, wm = zeros, wv = zeros;
    if (std::isfinite(gate)) ditty::cpu::adamw_step(want.data(), g.data(), wm.data(), wv.data(), n, 1e-3, 0.9, 0.999, 1e-8, 0.0, 1);
    expect_bits("adamw gate " + std::to_string(gate), t::download(dp), want);
  }
}

DITTY_TEST(sum_squares) {
  uint64_t seed = 300;
  std::vector<int64_t> sizes = {0, 1, 7, 15, 16, 17, 33, 257, 1031, 16383, 16384, 16385};
  if (!t::quick()) {
    sizes.push_back(3 * 16384 + 4099);
    sizes.push_back(1025 * 16384 + 3);  // more block sums than the final in-order sum stages at once (1024)
  }
  for (int64_t n : sizes) {
    for (int64_t off : {0, 1}) {
      const std::string what = "sum_squares n" + std::to_string(n) + (off ? " misaligned" : "");
      auto x = t::normal(n, 1.0f, seed++);
      t::Rng r(seed++);
      for (int64_t i = 0; i < n / 50; i++) x[r.below(n)] *= 1e4f;  // a wide range: the order shows in the bits
      const double want = ditty::cpu::sum_squares(x.data(), n);
      auto dx = place(x, off);
      auto scratch = t::device_array<double>(std::max<int64_t>(1, ditty::cuda::sum_squares_scratch_doubles(n)));
      auto out = t::device_array<double>(1);
      const auto got = t::same_under_all_schedules(what, [&] {
        ditty::cuda::sum_squares(dx.get(), n, out.get(), scratch.get(), nullptr);
        return t::download(out);
      });
      DITTY_EXPECT(t::bitwise_equal(got, std::vector<double>{want}), what, ": ", got[0], " vs the CPU's ", want);
    }
  }
}

// the adapters' host rule: coef = max_norm / (sqrt(sum_sq) + 1e-6) in double, g *= float(coef) when
// the norm is finite, max_norm > 0 and coef < 1
DITTY_TEST(clip_by_norm) {
  uint64_t seed = 700;
  for (int64_t n : {1, 7, 33, 1031}) {
    for (int64_t off : {0, 1}) {
      const auto g = t::normal(n, 1.0f, seed++);
      const double sum = ditty::cpu::sum_squares(g.data(), n);
      for (double max_norm : {0.0, 0.5, 1e9}) {
        for (double sum_sq : {sum, static_cast<double>(INFINITY), static_cast<double>(NAN)}) {
          const std::string what = "clip_by_norm n" + std::to_string(n) + " max " + std::to_string(max_norm) +
                                   " sum " + std::to_string(sum_sq) + (off ? " misaligned" : "");
          std::vector<float> want = g;
          const double norm = std::sqrt(sum_sq);
          if (std::isfinite(norm) && max_norm > 0) {
            const double coef = max_norm / (norm + 1e-6);
            if (coef < 1) ditty::cpu::scale_inplace(want.data(), n, static_cast<float>(coef));
          }
          auto dg = place(g, off);
          auto dsum = t::upload(std::vector<double>{sum_sq});
          const auto got = t::same_under_all_schedules(what, [&] {
            refill(dg, g);
            ditty::cuda::clip_by_norm(dg.get(), n, dsum.get(), max_norm, nullptr);
            return t::download(dg.get(), n);
          });
          expect_bits(what, got, want);
        }
      }
    }
  }
}

}  // namespace

DITTY_TEST_MAIN()
