// The common CUDA kernels (ditty/cuda/common.h: embedding, layer norm, elementwise, conversions)
// against their CPU twins (ditty/common.h): odd sizes, float and bf16 storage, aligned (16-byte
// paths) and misaligned pointers (one-value paths), outputs bitwise equal under every schedule.
// Gathers, adds, scales and conversions are one float operation per value: bitwise equal to the CPU
// (bf16: the CPU's float result rounded to nearest even). Layer norm: the CPU sums in double, the
// device in float (and nvcc may contract): forward within 2e-5 (float) / 1/128 (bf16) of the size of
// the terms each output is summed from (|xhat w| + |b|), mean within 2e-5 of |mean| + std, rstd within
// 2e-5 relative, backward within 1e-4 (float) / 1/64 (bf16) relative to max(|want|, 1e-3 max|want|).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "ditty/common.h"
#include "ditty/cuda/common.h"
#include "ditty/cuda/testing.h"

namespace t = ditty::cuda::testing;
using bf16 = __nv_bfloat16;

namespace {

using t::expect_bits;
using t::expect_close;
using t::place;
using t::place_empty;
using t::refill;
using t::rounded;
using t::store;
using t::type_name;

// |got - want| <= tol * scale[i] per element: scale is the size of the terms the output is summed
// from (|xhat w| + |b| for a layer norm), so cancellation does not count against the kernel.
template <class S>
void expect_close_scaled(const std::string& what, const std::vector<S>& got, const std::vector<float>& want,
                         const std::vector<double>& scale, double tol) {
  double worst = 0;
  size_t where = 0;
  for (size_t i = 0; i < want.size(); i++) {
    const double g = t::to_float(got[i]);
    const double e = std::isnan(g) ? INFINITY : std::fabs(g - want[i]) / std::max(scale[i], 1e-30);
    if (e > worst) {
      worst = e;
      where = i;
    }
  }
  DITTY_EXPECT(worst <= tol, what, ": error ", worst, " of the terms' size at ", where, " (tolerance ", tol, ")");
}

const std::vector<int64_t> kSizes = {1, 7, 8, 33, 257, 1031, 4099};

// ---- elementwise ----

template <class S>
void elementwise_cases() {
  uint64_t seed = 1;
  for (int64_t n : kSizes) {
    for (int64_t off : {0, 1}) {
      const std::string tag = std::string(type_name<S>()) + " n" + std::to_string(n) + (off ? " misaligned" : "");
      const auto a = rounded<S>(t::normal(n, 3.0f, seed++));
      const auto b = rounded<S>(t::normal(n, 3.0f, seed++));
      auto da = place(store<S>(a), off), db = place(store<S>(b), off);
      auto dout = place_empty<S>(n, off);

      std::vector<float> want(n);
      ditty::cpu::add(a.data(), b.data(), want.data(), n);
      auto got = t::same_under_all_schedules("add " + tag, [&] {
        ditty::cuda::add(da.get(), db.get(), dout.get(), n, nullptr);
        return t::download(dout.get(), n);
      });
      expect_bits("add " + tag, got, want);

      got = t::same_under_all_schedules("add_inplace " + tag, [&] {
        refill(dout, store<S>(a));
        ditty::cuda::add_inplace(dout.get(), db.get(), n, nullptr);
        return t::download(dout.get(), n);
      });
      expect_bits("add_inplace " + tag, got, want);

      const float s = 0.3f;
      want = a;
      ditty::cpu::scale_inplace(want.data(), n, s);
      got = t::same_under_all_schedules("scale_inplace " + tag, [&] {
        refill(dout, store<S>(a));
        ditty::cuda::scale_inplace(dout.get(), n, s, nullptr);
        return t::download(dout.get(), n);
      });
      expect_bits("scale_inplace " + tag, got, want);
    }
  }
}

DITTY_TEST(elementwise_f32) { elementwise_cases<float>(); }
DITTY_TEST(elementwise_bf16) { elementwise_cases<bf16>(); }

DITTY_TEST(conversions) {
  uint64_t seed = 50;
  for (int64_t n : kSizes) {
    for (int64_t off : {0, 1}) {
      const std::string tag = "n" + std::to_string(n) + (off ? " misaligned" : "");
      auto x = t::normal(n, 10.0f, seed++);
      if (n > 3) {  // rounding ties and specials
        x[0] = 1.00390625f;  // halfway between two bf16 values: to even
        x[1] = -0.0f;
        x[2] = INFINITY;
        x[3] = 3.4e38f;  // rounds up to inf
      }
      auto dx = place(x, off);
      auto dh = place_empty<bf16>(n, off);
      const auto got = t::same_under_all_schedules("f32_to_bf16 " + tag, [&] {
        ditty::cuda::f32_to_bf16(dx.get(), dh.get(), n, nullptr);
        return t::download(dh.get(), n);
      });
      DITTY_EXPECT(t::bitwise_equal(got, t::to_bf16(x)), "f32_to_bf16 ", tag);
      auto df = place_empty<float>(n, off);
      const auto back = t::same_under_all_schedules("bf16_to_f32 " + tag, [&] {
        ditty::cuda::bf16_to_f32(dh.get(), df.get(), n, nullptr);
        return t::download(df.get(), n);
      });
      DITTY_EXPECT(t::bitwise_equal(back, t::to_float(got)), "bf16_to_f32 ", tag);
    }
  }
}

// ---- embedding ----

template <class S>
void embedding_cases() {
  uint64_t seed = 100;
  for (int64_t C : {1, 7, 8, 33, 264, 1031}) {
    for (int64_t n : {1, 7, 33}) {
      const int64_t V = 37;
      const std::string tag = std::string(type_name<S>()) + " n" + std::to_string(n) + " C" + std::to_string(C);
      const auto table = rounded<S>(t::normal(V * C, 1.0f, seed++));
      std::vector<int32_t> ids(n);
      t::Rng r(seed++);
      for (auto& id : ids) id = static_cast<int32_t>(r.below(V));
      ids[0] = V - 1;
      std::vector<float> want(n * C);
      ditty::cpu::embedding_forward(ids.data(), n, table.data(), C, want.data());
      auto dtable = t::upload(store<S>(table));
      auto dids = t::upload(ids);
      auto dout = t::device_array<S>(n * C);
      const auto got = t::same_under_all_schedules("embedding " + tag, [&] {
        ditty::cuda::embedding_forward(dids.get(), n, dtable.get(), C, dout.get(), nullptr);
        return t::download(dout);
      });
      expect_bits("embedding " + tag, got, want);
    }
  }
}

DITTY_TEST(embedding_f32) { embedding_cases<float>(); }
DITTY_TEST(embedding_bf16) { embedding_cases<bf16>(); }

// ---- layer norm ----

struct LnShape {
  int64_t N, C;
};
std::vector<LnShape> ln_shapes() {
  if (t::quick()) return {{1, 1}, {7, 7}, {3, 264}};
  return {{1, 1}, {7, 7}, {33, 33}, {5, 264}, {3, 1031}, {2, 2048}};
}

template <class S>
double fwd_tol() {
  return std::is_same_v<S, float> ? 2e-5 : 1.0 / 128;
}
template <class S>
double bwd_tol() {
  return std::is_same_v<S, float> ? 1e-4 : 1.0 / 64;
}

template <class S>
void layernorm_forward_case(const LnShape& s, bool residual, int64_t off, uint64_t seed) {
  const std::string what = std::string(residual ? "residual_layernorm_forward " : "layernorm_forward ") +
                           type_name<S>() + " N" + std::to_string(s.N) + " C" + std::to_string(s.C) +
                           (off ? " misaligned" : "");
  const int64_t n = s.N * s.C;
  // rows with a large common offset: the statistics must not lose the small deviations
  auto a = t::normal(n, 1.0f, seed);
  for (int64_t r = 0; r < s.N; r++)
    for (int64_t c = 0; c < s.C; c++) a[r * s.C + c] += (r % 2) ? 8.0f : 0.0f;
  a = rounded<S>(a);
  const auto res = rounded<S>(t::normal(n, 1.0f, seed + 1));
  const auto w = t::normal(s.C, 1.0f, seed + 2), b = t::normal(s.C, 0.5f, seed + 3);
  // the CPU twin on what the device normalizes: a, or a + res rounded to S
  std::vector<float> x = a;
  if (residual) {
    ditty::cpu::add(a.data(), res.data(), x.data(), n);
    x = rounded<S>(x);
  }
  std::vector<float> want(n), want_mean(s.N), want_rstd(s.N);
  const float eps = 1e-5f;
  ditty::cpu::layernorm_forward(x.data(), w.data(), b.data(), s.N, s.C, eps, want.data(), want_mean.data(),
                                want_rstd.data());
  auto da = place(store<S>(a), off), dres = place(store<S>(res), off);
  auto dsum = place_empty<S>(n, off), dout = place_empty<S>(n, off);
  auto dw = place(w, off), db = place(b, off);
  auto dmean = t::device_array<float>(s.N), drstd = t::device_array<float>(s.N);
  const auto got = t::same_under_all_schedules(what, [&] {
    if (residual) {
      ditty::cuda::residual_layernorm_forward(da.get(), dres.get(), dsum.get(), dw.get(), db.get(), s.N, s.C, eps,
                                              dout.get(), dmean.get(), drstd.get(), nullptr);
    } else {
      ditty::cuda::layernorm_forward(da.get(), dw.get(), db.get(), s.N, s.C, eps, dout.get(), dmean.get(), drstd.get(),
                                     nullptr);
    }
    return std::make_tuple(t::download(dout.get(), n), t::download(dmean), t::download(drstd),
                           residual ? t::download(dsum.get(), n) : std::vector<S>{});
  });
  std::vector<double> scale(n);
  for (int64_t r = 0; r < s.N; r++) {
    for (int64_t c = 0; c < s.C; c++) {
      const int64_t i = r * s.C + c;
      scale[i] = std::fabs((x[i] - want_mean[r]) * want_rstd[r] * w[c]) + std::fabs(b[c]);
    }
  }
  expect_close_scaled(what + " out", std::get<0>(got), want, scale, fwd_tol<S>());
  std::vector<double> mean_scale(s.N);  // a mean near 0 is judged on the row's spread
  for (int64_t r = 0; r < s.N; r++) mean_scale[r] = std::fabs(want_mean[r]) + 1.0 / want_rstd[r];
  expect_close_scaled(what + " mean", std::get<1>(got), want_mean, mean_scale, 2e-5);
  expect_close(what + " rstd", std::get<2>(got), want_rstd, 2e-5);
  if (residual) expect_bits(what + " sum", std::get<3>(got), x);
}

template <class S>
void layernorm_backward_case(const LnShape& s, bool accumulate, bool residual, int64_t off, uint64_t seed) {
  const std::string what = std::string("layernorm_backward ") + type_name<S>() + " N" + std::to_string(s.N) + " C" +
                           std::to_string(s.C) + (accumulate ? " accumulate" : "") + (residual ? " residual" : "") +
                           (off ? " misaligned" : "");
  const int64_t n = s.N * s.C;
  const auto x = rounded<S>(t::normal(n, 2.0f, seed));
  const auto dy = rounded<S>(t::normal(n, 1.0f, seed + 1));
  const auto res = rounded<S>(t::normal(n, 1.0f, seed + 2));
  const auto dx0 = rounded<S>(t::normal(n, 1.0f, seed + 3));
  const auto w = t::normal(s.C, 1.0f, seed + 4), b = t::normal(s.C, 1.0f, seed + 5);
  std::vector<float> y(n), mean(s.N), rstd(s.N);
  ditty::cpu::layernorm_forward(x.data(), w.data(), b.data(), s.N, s.C, 1e-5f, y.data(), mean.data(), rstd.data());
  // dx = residual + LN'(dy) (+ dx0): the CPU accumulates into a buffer holding residual (+ dx0)
  std::vector<float> want(n, 0.0f);
  if (residual) want = res;
  if (accumulate) ditty::cpu::add_inplace(want.data(), dx0.data(), n);
  ditty::cpu::layernorm_backward(dy.data(), x.data(), w.data(), mean.data(), rstd.data(), s.N, s.C, want.data(),
                                 residual || accumulate);
  auto dx_in = place(store<S>(x), off), ddy = place(store<S>(dy), off), dres = place(store<S>(res), off);
  auto ddx = place_empty<S>(n, off);
  auto dw = place(w, off);
  auto dmean = t::upload(mean), drstd = t::upload(rstd);
  const auto got = t::same_under_all_schedules(what, [&] {
    refill(ddx, store<S>(dx0));
    ditty::cuda::layernorm_backward(ddy.get(), dx_in.get(), dw.get(), dmean.get(), drstd.get(), s.N, s.C, ddx.get(),
                                    accumulate, residual ? dres.get() : nullptr, nullptr);
    return t::download(ddx.get(), n);
  });
  expect_close(what, got, want, bwd_tol<S>());
}

template <class S>
void layernorm_cases() {
  uint64_t seed = 1000;
  for (const LnShape& s : ln_shapes()) {
    for (int64_t off : {0, 1}) {
      layernorm_forward_case<S>(s, false, off, seed++);
      layernorm_forward_case<S>(s, true, off, seed++);
      for (bool acc : {false, true})
        for (bool res : {false, true}) layernorm_backward_case<S>(s, acc, res, off, seed++);
    }
  }
}

// the residual sum written over one of its inputs (sum aliases a, then r)
template <class S>
void residual_in_place_case(bool over_a) {
  const int64_t N = 5, C = 264, n = N * C;
  const std::string what = std::string("residual_layernorm_forward in place ") + type_name<S>() +
                           (over_a ? " over a" : " over r");
  const auto a = rounded<S>(t::normal(n, 1.0f, 21)), res = rounded<S>(t::normal(n, 1.0f, 22));
  const auto w = t::normal(C, 1.0f, 23), b = t::normal(C, 0.5f, 24);
  std::vector<float> x(n), want(n), mean(N), rstd(N);
  ditty::cpu::add(a.data(), res.data(), x.data(), n);
  x = rounded<S>(x);
  ditty::cpu::layernorm_forward(x.data(), w.data(), b.data(), N, C, 1e-5f, want.data(), mean.data(), rstd.data());
  auto da = t::device_array<S>(n), dres = t::device_array<S>(n), dout = t::device_array<S>(n);
  auto dw = t::upload(w), db = t::upload(b);
  auto dmean = t::device_array<float>(N), drstd = t::device_array<float>(N);
  const auto got = t::same_under_all_schedules(what, [&] {
    t::copy_to_device(da, store<S>(a));
    t::copy_to_device(dres, store<S>(res));
    S* sum = over_a ? da.get() : dres.get();
    ditty::cuda::residual_layernorm_forward(da.get(), dres.get(), sum, dw.get(), db.get(), N, C, 1e-5f, dout.get(),
                                            dmean.get(), drstd.get(), nullptr);
    return std::make_tuple(t::download(sum, n), t::download(dout), t::download(drstd));
  });
  expect_bits(what + " sum", std::get<0>(got), x);
  expect_close(what + " out", std::get<1>(got), want, std::is_same_v<S, float> ? 1e-4 : 1.0 / 64);
  expect_close(what + " rstd", std::get<2>(got), rstd, 2e-5);
}

DITTY_TEST(residual_layernorm_in_place) {
  for (bool over_a : {true, false}) {
    residual_in_place_case<float>(over_a);
    residual_in_place_case<bf16>(over_a);
  }
}

DITTY_TEST(layernorm_f32) { layernorm_cases<float>(); }
DITTY_TEST(layernorm_bf16) { layernorm_cases<bf16>(); }

// dx may alias dy (the backward reads a value before it overwrites it, block-wide)
DITTY_TEST(layernorm_backward_in_place) {
  const int64_t N = 5, C = 264, n = N * C;
  const auto x = t::normal(n, 2.0f, 7), dy = t::normal(n, 1.0f, 8), w = t::normal(C, 1.0f, 9);
  const auto b = t::normal(C, 1.0f, 10);
  std::vector<float> y(n), mean(N), rstd(N), want(n);
  ditty::cpu::layernorm_forward(x.data(), w.data(), b.data(), N, C, 1e-5f, y.data(), mean.data(), rstd.data());
  ditty::cpu::layernorm_backward(dy.data(), x.data(), w.data(), mean.data(), rstd.data(), N, C, want.data(), false);
  auto dx = t::upload(x), ddy = t::device_array<float>(n), dw = t::upload(w), dm = t::upload(mean),
       dr = t::upload(rstd);
  const auto got = t::same_under_all_schedules("layernorm_backward in place", [&] {
    t::copy_to_device(ddy, dy);
    ditty::cuda::layernorm_backward(ddy.get(), dx.get(), dw.get(), dm.get(), dr.get(), N, C, ddy.get(), false, nullptr,
                                    nullptr);
    return t::download(ddy);
  });
  expect_close("layernorm_backward in place", got, want, 1e-4);
}

}  // namespace

DITTY_TEST_MAIN()
