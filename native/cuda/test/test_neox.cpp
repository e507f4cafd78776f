// The GPT-NeoX CUDA kernels (ditty/cuda/neox.h) against their CPU twins (ditty/neox.h): odd sizes,
// head dims 8 .. 128 (each attention tile configuration), partial rotary, S > T, float and bf16
// storage, outputs bitwise equal under every thread schedule.
// Tolerances, as errors relative to max(|want|, 1e-2 max|want|) (attention gradients: 1e-2 of the
// largest of dq, dk, dv; dq is all rounding noise at T = 1): float storage 5e-5 (the GPU sums
// in another order than the CPU's vector tiles, contracts to FMA and has its own expf; flash
// attention rescales instead of dividing once); bf16 storage 1/128 (the CPU gets the same
// bf16-rounded inputs, so what differs is mostly the final rounding to bf16, at most 2^-9). lse is
// float in both and held to the float tolerance.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ditty/cuda/neox.h"
#include "ditty/cuda/testing.h"
#include "ditty/neox.h"

namespace t = ditty::cuda::testing;
using bf16 = __nv_bfloat16;
using ditty::cpu::Gelu;

namespace {

using t::store;
using t::rounded;
using t::type_name;

constexpr double kFloatTolerance = 5e-5;
constexpr double kFloor = 1e-2;
// The GELU gradient cancels (0.5 (1 + t) + slope near its zero at x = -0.75, 1 - t^2 for large |x|),
// and the CPU twin's vector tanh/erf are a few ulp from libm's and CUDA's: measured 4e-5 in the emulator.
constexpr double kGeluGradTolerance = 2e-4;
template <class S>
double tolerance() {
  return std::is_same_v<S, float> ? kFloatTolerance : 1.0 / 128;
}

using t::max_abs;

// errors relative to at least kFloor of scale (default: want's largest magnitude)
template <class G>
void expect_close(const std::string& what, const std::vector<G>& got, const std::vector<float>& want, double tol,
                  double scale = -1) {
  t::expect_close(what, got, want, tol, kFloor, scale);
}

// ---- qkv split + rotary -----------------------------------------------------------------------

struct RotaryShape {
  int64_t B, T, heads, d, R, offset;
};
std::string name_of(const RotaryShape& s) {
  return "B" + std::to_string(s.B) + " T" + std::to_string(s.T) + " heads" + std::to_string(s.heads) + " d" +
         std::to_string(s.d) + " R" + std::to_string(s.R) + " offset" + std::to_string(s.offset);
}
std::vector<RotaryShape> rotary_shapes() {
  if (t::quick()) return {{1, 1, 1, 8, 8, 0}, {2, 7, 3, 24, 6, 5}};
  return {{1, 1, 1, 8, 8, 0}, {2, 7, 3, 24, 6, 5}, {1, 37, 2, 16, 4, 0}, {1, 5, 2, 16, 0, 3}, {2, 9, 1, 128, 32, 1000}};
}

template <class S>
void rotary_cases() {
  uint64_t seed = 1;
  const double base = 10000.0;
  for (const RotaryShape& s : rotary_shapes()) {
    const std::string what = std::string(type_name<S>()) + " " + name_of(s);
    const int64_t n = s.B * s.T * s.heads * 3 * s.d, part = n / 3;
    const auto qkv = rounded<S>(t::uniform(n, -2.0f, 2.0f, seed++));
    std::vector<float> wq(part), wk(part), wv(part);
    ditty::cpu::qkv_rotary_forward(qkv.data(), s.B, s.T, s.heads, s.d, s.R, base, s.offset, wq.data(), wk.data(),
                                   wv.data());
    auto dqkv = t::upload(store<S>(qkv));
    auto q = t::device_array<S>(part), k = t::device_array<S>(part), v = t::device_array<S>(part);
    const auto got = t::same_under_all_schedules("qkv_rotary_forward " + what, [&] {
      ditty::cuda::qkv_rotary_forward(dqkv.get(), s.B, s.T, s.heads, s.d, s.R, base, s.offset, q.get(), k.get(), v.get(),
                                      nullptr);
      return std::make_tuple(t::download(q), t::download(k), t::download(v));
    });
    expect_close("qkv_rotary_forward q " + what, std::get<0>(got), wq, tolerance<S>());
    expect_close("qkv_rotary_forward k " + what, std::get<1>(got), wk, tolerance<S>());
    DITTY_EXPECT(t::bitwise_equal(std::get<2>(got), store<S>(wv)), "qkv_rotary_forward v ", what, ": not a copy");

    const auto gq = rounded<S>(t::uniform(part, -1.0f, 1.0f, seed++));
    const auto gk = rounded<S>(t::uniform(part, -1.0f, 1.0f, seed++));
    const auto gv = rounded<S>(t::uniform(part, -1.0f, 1.0f, seed++));
    std::vector<float> want(n);
    ditty::cpu::qkv_rotary_backward(gq.data(), gk.data(), gv.data(), s.B, s.T, s.heads, s.d, s.R, base, s.offset,
                                    want.data());
    auto dgq = t::upload(store<S>(gq)), dgk = t::upload(store<S>(gk)), dgv = t::upload(store<S>(gv));
    auto out = t::device_array<S>(n);
    const auto back = t::same_under_all_schedules("qkv_rotary_backward " + what, [&] {
      ditty::cuda::qkv_rotary_backward(dgq.get(), dgk.get(), dgv.get(), s.B, s.T, s.heads, s.d, s.R, base, s.offset,
                                       out.get(), nullptr);
      return t::download(out);
    });
    expect_close("qkv_rotary_backward " + what, back, want, tolerance<S>());
  }
}

DITTY_TEST(qkv_rotary_f32) { rotary_cases<float>(); }
DITTY_TEST(qkv_rotary_bf16) { rotary_cases<bf16>(); }

// ---- attention --------------------------------------------------------------------------------

struct AttnShape {
  int64_t B, H, T, S, d;
};
std::string name_of(const AttnShape& s) {
  return "B" + std::to_string(s.B) + " H" + std::to_string(s.H) + " T" + std::to_string(s.T) + " S" +
         std::to_string(s.S) + " d" + std::to_string(s.d);
}
// Every tile configuration (d <= 32, <= 64, <= 128), one and several tiles of queries and keys.
std::vector<AttnShape> attention_shapes() {
  if (t::quick()) return {{1, 1, 1, 1, 8}, {1, 2, 7, 7, 24}, {1, 1, 5, 12, 16}, {1, 1, 9, 9, 128}};
  return {{1, 1, 1, 1, 8},    {2, 3, 7, 7, 16},    {1, 2, 37, 37, 24},  {1, 1, 5, 45, 16},  {1, 1, 1, 40, 64},
          {1, 1, 130, 130, 16}, {1, 2, 37, 50, 64}, {1, 1, 70, 70, 48}, {1, 1, 37, 37, 128}, {1, 1, 70, 90, 80},
          {1, 1, 100, 100, 128}, {1, 1, 64, 64, 32}, {1, 2, 33, 33, 128}};  // the last two: one full tile, one past
}

template <class S>
void attention_case(const AttnShape& s, uint64_t seed) {
  const std::string what = std::string(type_name<S>()) + " " + name_of(s);
  const int64_t nq = s.B * s.H * s.T * s.d, nk = s.B * s.H * s.S * s.d, bht = s.B * s.H * s.T;
  const auto q = rounded<S>(t::normal(nq, 1.0f, seed));
  const auto k = rounded<S>(t::normal(nk, 1.0f, seed + 1));
  const auto v = rounded<S>(t::normal(nk, 1.0f, seed + 2));
  std::vector<float> want(nq), want_lse(bht);
  ditty::cpu::attention_forward(q.data(), k.data(), v.data(), s.B, s.H, s.T, s.S, s.d, want.data(), want_lse.data());

  auto dq = t::upload(store<S>(q)), dk = t::upload(store<S>(k)), dv = t::upload(store<S>(v));
  auto out = t::device_array<S>(nq);
  auto lse = t::device_array<float>(bht);
  const auto got = t::same_under_all_schedules("attention_forward " + what, [&] {
    ditty::cuda::attention_forward(dq.get(), dk.get(), dv.get(), s.B, s.H, s.T, s.S, s.d, out.get(), lse.get(), nullptr);
    return std::make_tuple(t::download(out), t::download(lse));
  });
  // out rows are convex combinations of v rows: errors relative to v's magnitude
  expect_close("attention_forward out " + what, std::get<0>(got), want, tolerance<S>(), max_abs(v));
  expect_close("attention_forward lse " + what, std::get<1>(got), want_lse, kFloatTolerance);
  {
    auto out2 = t::device_array<S>(nq);
    ditty::cuda::attention_forward(dq.get(), dk.get(), dv.get(), s.B, s.H, s.T, s.S, s.d, out2.get(), nullptr, nullptr);
    DITTY_EXPECT(t::bitwise_equal(t::download(out2), std::get<0>(got)), "attention_forward without lse ", what,
                 ": another output");
  }
  if (s.S != s.T) return;

  // backward from the CPU's forward (out rounded as the storage holds it)
  const auto o = rounded<S>(want);
  const auto g = rounded<S>(t::normal(nq, 1.0f, seed + 3));
  std::vector<float> wdq(nq), wdk(nq), wdv(nq);
  ditty::cpu::attention_backward(g.data(), q.data(), k.data(), v.data(), o.data(), want_lse.data(), s.B, s.H, s.T, s.d,
                                 wdq.data(), wdk.data(), wdv.data());
  auto dout = t::upload(store<S>(g)), dout_o = t::upload(store<S>(o));
  auto dlse = t::upload(want_lse);
  auto gq = t::device_array<S>(nq), gk = t::device_array<S>(nq), gv = t::device_array<S>(nq);
  auto scratch = t::device_array<float>(ditty::cuda::attention_backward_scratch_floats(s.B, s.H, s.T));
  const auto grads = t::same_under_all_schedules("attention_backward " + what, [&] {
    ditty::cuda::attention_backward(dout.get(), dq.get(), dk.get(), dv.get(), dout_o.get(), dlse.get(), s.B, s.H, s.T,
                                    s.d, gq.get(), gk.get(), gv.get(), scratch.get(), nullptr);
    return std::make_tuple(t::download(gq), t::download(gk), t::download(gv));
  });
  const double scale = std::max({max_abs(wdq), max_abs(wdk), max_abs(wdv)});
  expect_close("attention_backward dq " + what, std::get<0>(grads), wdq, tolerance<S>(), scale);
  expect_close("attention_backward dk " + what, std::get<1>(grads), wdk, tolerance<S>(), scale);
  expect_close("attention_backward dv " + what, std::get<2>(grads), wdv, tolerance<S>(), scale);
}

template <class S>
void attention_cases() {
  uint64_t seed = 300;
  for (const AttnShape& s : attention_shapes()) attention_case<S>(s, seed += 10);
}

DITTY_TEST(attention_f32) { attention_cases<float>(); }
DITTY_TEST(attention_bf16) { attention_cases<bf16>(); }

DITTY_TEST(attention_refuses_head_dim_over_128) {
  bool threw = false;
  try {
    ditty::cuda::attention_forward(static_cast<const float*>(nullptr), nullptr, nullptr, 1, 1, 1, 1, 129, nullptr,
                                   nullptr, nullptr);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  DITTY_EXPECT(threw, "d = 129 accepted");
}

// ---- GELU -------------------------------------------------------------------------------------

template <class S>
void gelu_cases() {
  uint64_t seed = 700;
  for (Gelu kind : {Gelu::Erf, Gelu::Tanh, Gelu::Fast}) {
    for (int64_t n : {int64_t{1}, int64_t{37}, int64_t{5003}}) {
      const std::string what =
          std::string(type_name<S>()) + " kind" + std::to_string(static_cast<int>(kind)) + " n" + std::to_string(n);
      const auto x = rounded<S>(t::uniform(n, -6.0f, 6.0f, seed++));
      const auto g = rounded<S>(t::uniform(n, -1.0f, 1.0f, seed++));
      std::vector<float> want(n), wantd(n);
      ditty::cpu::gelu_forward(x.data(), want.data(), n, kind);
      ditty::cpu::gelu_backward(x.data(), g.data(), wantd.data(), n, kind);
      auto dx = t::upload(store<S>(x)), dg = t::upload(store<S>(g));
      auto out = t::device_array<S>(n), grad = t::device_array<S>(n);
      const auto got = t::same_under_all_schedules("gelu " + what, [&] {
        ditty::cuda::gelu_forward(dx.get(), out.get(), n, kind, nullptr);
        ditty::cuda::gelu_backward(dx.get(), dg.get(), grad.get(), n, kind, nullptr);
        return std::make_tuple(t::download(out), t::download(grad));
      });
      expect_close("gelu_forward " + what, std::get<0>(got), want, tolerance<S>());
      expect_close("gelu_backward " + what, std::get<1>(got), wantd, std::max(tolerance<S>(), kGeluGradTolerance));
    }
  }
}

DITTY_TEST(gelu_f32) { gelu_cases<float>(); }
DITTY_TEST(gelu_bf16) { gelu_cases<bf16>(); }

}  // namespace

DITTY_TEST_MAIN()
