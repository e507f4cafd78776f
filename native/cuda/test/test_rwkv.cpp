// The RWKV-4 CUDA kernels (ditty/cuda/rwkv.h) against their CPU twins (ditty/rwkv.h): odd sizes,
// float and bf16 storage, outputs bitwise equal under every thread schedule.
// Tolerances, as errors relative to max(|want|, 1e-3 max|want|): float storage 5e-5 (GPU: FMA
// contraction and CUDA's expf; the CPU twin: its own vector exp; measured up to 1.5e-5 for WKV at
// T = 600 in the emulator); bf16 storage 1/128 (the CPU gets the same bf16-rounded inputs, so what
// differs is the final rounding to bf16, at most 2^-9).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ditty/cuda/rwkv.h"
#include "ditty/cuda/testing.h"
#include "ditty/rwkv.h"

namespace t = ditty::cuda::testing;
using bf16 = __nv_bfloat16;

namespace {

using t::store;
using t::rounded;
using t::type_name;

template <class S>
double tolerance() {
  return std::is_same_v<S, float> ? 5e-5 : 1.0 / 128;
}

// within the tolerance of got's storage
template <class S>
void expect_close(const std::string& what, const std::vector<S>& got, const std::vector<float>& want) {
  t::expect_close(what, got, want, tolerance<S>());
}

template <class T>
void append(std::vector<T>& all, const std::vector<T>& part) {
  all.insert(all.end(), part.begin(), part.end());
}

struct Shape {
  int64_t B, T, C;
};
std::string name_of(const Shape& s) {
  return "B" + std::to_string(s.B) + " T" + std::to_string(s.T) + " C" + std::to_string(s.C);
}
std::vector<Shape> shapes() {
  if (t::quick()) return {{1, 1, 5}, {2, 7, 37}};
  return {{1, 1, 5}, {2, 7, 37}, {1, 37, 67}, {3, 13, 33}};
}
// WKV also at T past 512 (the backward's scratch design)
std::vector<Shape> wkv_shapes() {
  std::vector<Shape> s = shapes();
  s.push_back(t::quick() ? Shape{1, 130, 5} : Shape{2, 600, 9});
  return s;
}

// ---- time mix ---------------------------------------------------------------------------------

template <class S>
void time_mix_forward_case(const Shape& s, int n_mix, bool with_state, uint64_t seed) {
  const std::string what = std::string("time_mix_forward ") + type_name<S>() + " " + name_of(s) + " mixes " +
                           std::to_string(n_mix) + (with_state ? " state" : "");
  const int64_t n = s.B * s.T * s.C;
  const auto x = rounded<S>(t::uniform(n, -2.0f, 2.0f, seed));
  const auto state = rounded<S>(t::uniform(s.B * s.C, -2.0f, 2.0f, seed + 1));
  std::vector<std::vector<float>> mixes, want;
  std::vector<const float*> mix_ptrs;
  std::vector<float*> want_ptrs;
  for (int j = 0; j < n_mix; j++) {
    mixes.push_back(t::uniform(s.C, 0.0f, 1.0f, seed + 10 + j));
    want.emplace_back(n);
  }
  for (int j = 0; j < n_mix; j++) {
    mix_ptrs.push_back(mixes[j].data());
    want_ptrs.push_back(want[j].data());
  }
  ditty::cpu::time_mix_forward(x.data(), with_state ? state.data() : nullptr, s.B, s.T, s.C, mix_ptrs.data(), n_mix,
                               want_ptrs.data());

  auto dx = t::upload(store<S>(x));
  auto dstate = t::upload(store<S>(state));
  std::vector<t::DeviceArray<float>> dmix;
  std::vector<t::DeviceArray<S>> dout;
  std::vector<const float*> dmix_ptrs;
  std::vector<S*> dout_ptrs;
  for (int j = 0; j < n_mix; j++) {
    dmix.push_back(t::upload(mixes[j]));
    dout.push_back(t::device_array<S>(n));
    dmix_ptrs.push_back(dmix[j]);
    dout_ptrs.push_back(dout[j]);
  }
  const auto got = t::same_under_all_schedules(what, [&] {
    ditty::cuda::time_mix_forward(dx.get(), with_state ? dstate.get() : nullptr, s.B, s.T, s.C, dmix_ptrs.data(),
                                  n_mix, dout_ptrs.data(), nullptr);
    std::vector<S> all;
    for (int j = 0; j < n_mix; j++) append(all, t::download(dout[j]));
    return all;
  });
  for (int j = 0; j < n_mix; j++) {
    expect_close(what + " out " + std::to_string(j), std::vector<S>(got.begin() + j * n, got.begin() + (j + 1) * n),
                 want[j]);
  }
}

template <class S>
void time_mix_backward_case(const Shape& s, int n_mix, bool accumulate, uint64_t seed) {
  const std::string what = std::string("time_mix_backward ") + type_name<S>() + " " + name_of(s) + " mixes " +
                           std::to_string(n_mix) + (accumulate ? " accumulate" : "");
  const int64_t n = s.B * s.T * s.C;
  std::vector<std::vector<float>> mixes, grads;
  std::vector<const float*> mix_ptrs, grad_ptrs;
  for (int j = 0; j < n_mix; j++) {
    mixes.push_back(t::uniform(s.C, 0.0f, 1.0f, seed + 10 + j));
    grads.push_back(rounded<S>(t::uniform(n, -1.0f, 1.0f, seed + 20 + j)));
  }
  for (int j = 0; j < n_mix; j++) {
    mix_ptrs.push_back(mixes[j].data());
    grad_ptrs.push_back(grads[j].data());
  }
  const auto dx0 = rounded<S>(t::uniform(n, -1.0f, 1.0f, seed + 2));
  std::vector<float> want = dx0;
  ditty::cpu::time_mix_backward(grad_ptrs.data(), mix_ptrs.data(), n_mix, s.B, s.T, s.C, want.data(), accumulate);

  std::vector<t::DeviceArray<float>> dmix;
  std::vector<t::DeviceArray<S>> dgrad;
  std::vector<const float*> dmix_ptrs;
  std::vector<const S*> dgrad_ptrs;
  for (int j = 0; j < n_mix; j++) {
    dmix.push_back(t::upload(mixes[j]));
    dgrad.push_back(t::upload(store<S>(grads[j])));
    dmix_ptrs.push_back(dmix[j]);
    dgrad_ptrs.push_back(dgrad[j]);
  }
  auto ddx = t::device_array<S>(n);
  const auto got = t::same_under_all_schedules(what, [&] {
    t::copy_to_device(ddx, store<S>(dx0));
    ditty::cuda::time_mix_backward(dgrad_ptrs.data(), dmix_ptrs.data(), n_mix, s.B, s.T, s.C, ddx.get(), accumulate,
                                   nullptr);
    return t::download(ddx);
  });
  expect_close(what, got, want);
}

template <class S>
void time_mix_cases() {
  uint64_t seed = 100;
  for (const Shape& s : shapes()) {
    for (int n_mix : {1, 3}) {
      time_mix_forward_case<S>(s, n_mix, false, seed++);
      time_mix_forward_case<S>(s, n_mix, true, seed++);
      time_mix_backward_case<S>(s, n_mix, false, seed++);
      time_mix_backward_case<S>(s, n_mix, true, seed++);
    }
  }
}

DITTY_TEST(time_mix_f32) { time_mix_cases<float>(); }
DITTY_TEST(time_mix_bf16) { time_mix_cases<bf16>(); }

// ---- WKV --------------------------------------------------------------------------------------

struct WkvInputs {
  std::vector<float> decay, first, k, v;
};
// k mostly in [-3, 3] with a few large values, so the stable form's exponent shifts are exercised
template <class S>
WkvInputs wkv_inputs(const Shape& s, uint64_t seed) {
  const int64_t n = s.B * s.T * s.C;
  WkvInputs in{t::uniform(s.C, -3.0f, 1.0f, seed), t::uniform(s.C, -1.0f, 1.0f, seed + 1),
               t::uniform(n, -3.0f, 3.0f, seed + 2), t::uniform(n, -1.0f, 1.0f, seed + 3)};
  t::Rng r(seed + 4);
  for (int64_t i = 0; i < n / 50; i++) in.k[r.below(n)] = r.uniform(20.0f, 40.0f);
  in.k = rounded<S>(in.k);
  in.v = rounded<S>(in.v);
  return in;
}

template <class S>
void wkv_forward_case(const Shape& s, bool with_state, uint64_t seed) {
  const std::string what =
      std::string("wkv_forward ") + type_name<S>() + " " + name_of(s) + (with_state ? " state" : "");
  const int64_t n = s.B * s.T * s.C, bc = s.B * s.C;
  const WkvInputs in = wkv_inputs<S>(s, seed);
  // a start state as an earlier chunk leaves it: aa, bb > 0 scaled by e^-pp
  std::vector<float> state(3 * bc);
  {
    t::Rng r(seed + 9);
    for (int64_t i = 0; i < bc; i++) {
      state[i] = r.uniform(-1.0f, 1.0f);
      state[bc + i] = r.uniform(0.5f, 2.0f);
      state[2 * bc + i] = r.uniform(-3.0f, 5.0f);
    }
  }
  std::vector<float> want(n), want_state = state;
  ditty::cpu::wkv_forward(in.decay.data(), in.first.data(), in.k.data(), in.v.data(), s.B, s.T, s.C, want.data(),
                          with_state ? want_state.data() : nullptr);

  auto ddecay = t::upload(in.decay);
  auto dfirst = t::upload(in.first);
  auto dk = t::upload(store<S>(in.k));
  auto dv = t::upload(store<S>(in.v));
  auto dy = t::device_array<S>(n);
  auto dstate = t::device_array<float>(3 * bc);
  const auto got = t::same_under_all_schedules(what, [&] {
    t::copy_to_device(dstate, state);
    ditty::cuda::wkv_forward(ddecay, dfirst, dk.get(), dv.get(), s.B, s.T, s.C, dy.get(),
                             with_state ? dstate.get() : nullptr, nullptr);
    return std::make_tuple(t::download(dy), t::download(dstate));
  });
  expect_close(what + " y", std::get<0>(got), want);
  if (with_state) {
    // the state itself is float: hold it to the float tolerance whatever the storage
    expect_close(what + " state", std::get<1>(got), want_state);
  } else {
    DITTY_EXPECT(t::bitwise_equal(std::get<1>(got), state), what, ": the state was written without being passed");
  }
}

template <class S>
void wkv_backward_case(const Shape& s, uint64_t seed) {
  const std::string what = std::string("wkv_backward ") + type_name<S>() + " " + name_of(s);
  const int64_t n = s.B * s.T * s.C;
  const WkvInputs in = wkv_inputs<S>(s, seed);
  const auto g = rounded<S>(t::uniform(n, -1.0f, 1.0f, seed + 5));
  std::vector<float> want_k(n), want_v(n);
  ditty::cpu::wkv_backward(in.decay.data(), in.first.data(), in.k.data(), in.v.data(), g.data(), s.B, s.T, s.C,
                           want_k.data(), want_v.data());

  auto ddecay = t::upload(in.decay);
  auto dfirst = t::upload(in.first);
  auto dk = t::upload(store<S>(in.k));
  auto dv = t::upload(store<S>(in.v));
  auto dg = t::upload(store<S>(g));
  auto gk = t::device_array<S>(n);
  auto gv = t::device_array<S>(n);
  auto scratch = t::device_array<float>(ditty::cuda::wkv_backward_scratch_floats(s.B, s.T, s.C));
  const auto got = t::same_under_all_schedules(what, [&] {
    ditty::cuda::wkv_backward(ddecay, dfirst, dk.get(), dv.get(), dg.get(), s.B, s.T, s.C, gk.get(), gv.get(),
                              scratch.get(), nullptr);
    return std::make_tuple(t::download(gk), t::download(gv));
  });
  expect_close(what + " dk", std::get<0>(got), want_k);
  expect_close(what + " dv", std::get<1>(got), want_v);
}

template <class S>
void wkv_cases() {
  uint64_t seed = 500;
  for (const Shape& s : wkv_shapes()) {
    wkv_forward_case<S>(s, false, seed++);
    wkv_forward_case<S>(s, true, seed++);
    wkv_backward_case<S>(s, seed++);
  }
}

DITTY_TEST(wkv_f32) { wkv_cases<float>(); }
DITTY_TEST(wkv_bf16) { wkv_cases<bf16>(); }

// Two chunks with the state carried equal one call over both (decoding after a prompt).
DITTY_TEST(wkv_state_chunks) {
  const Shape s{2, 11, 37};
  const int64_t n = s.B * s.T * s.C, bc = s.B * s.C, t1 = 4;
  const WkvInputs in = wkv_inputs<float>(s, 77);
  auto ddecay = t::upload(in.decay);
  auto dfirst = t::upload(in.first);
  auto dk = t::upload(in.k);
  auto dv = t::upload(in.v);
  auto whole = t::device_array<float>(n);
  ditty::cuda::wkv_forward(ddecay, dfirst, dk.get(), dv.get(), s.B, s.T, s.C, whole.get(), nullptr, nullptr);
  // the chunks as [B, t, C] copies
  std::vector<float> k1, v1, k2, v2;
  for (int64_t b = 0; b < s.B; b++) {
    for (int64_t t = 0; t < s.T; t++) {
      const auto at = (b * s.T + t) * s.C;
      auto& kk = t < t1 ? k1 : k2;
      auto& vv = t < t1 ? v1 : v2;
      kk.insert(kk.end(), in.k.begin() + at, in.k.begin() + at + s.C);
      vv.insert(vv.end(), in.v.begin() + at, in.v.begin() + at + s.C);
    }
  }
  std::vector<float> state(3 * bc, 0.0f);
  for (int64_t i = 0; i < bc; i++) state[2 * bc + i] = -1e38f;
  auto dstate = t::upload(state);
  auto dk1 = t::upload(k1), dv1 = t::upload(v1), dk2 = t::upload(k2), dv2 = t::upload(v2);
  auto y1 = t::device_array<float>(k1.size()), y2 = t::device_array<float>(k2.size());
  ditty::cuda::wkv_forward(ddecay, dfirst, dk1.get(), dv1.get(), s.B, t1, s.C, y1.get(), dstate.get(), nullptr);
  ditty::cuda::wkv_forward(ddecay, dfirst, dk2.get(), dv2.get(), s.B, s.T - t1, s.C, y2.get(), dstate.get(), nullptr);
  const auto w = t::download(whole), a = t::download(y1), b = t::download(y2);
  std::vector<float> joined;
  for (int64_t bi = 0; bi < s.B; bi++) {
    joined.insert(joined.end(), a.begin() + bi * t1 * s.C, a.begin() + (bi + 1) * t1 * s.C);
    joined.insert(joined.end(), b.begin() + bi * (s.T - t1) * s.C, b.begin() + (bi + 1) * (s.T - t1) * s.C);
  }
  // the same operations in the same order: the same bits
  DITTY_EXPECT(t::bitwise_equal(joined, w), "chunked WKV differs from one call at ", t::first_bitwise_difference(joined, w));
}

// ---- gates ------------------------------------------------------------------------------------

template <class S>
void gate_cases() {
  uint64_t seed = 900;
  for (int64_t n : {int64_t{1}, int64_t{37}, int64_t{1000}, int64_t{5003}}) {
    const std::string size = std::string(type_name<S>()) + " n" + std::to_string(n);
    const auto a = rounded<S>(t::uniform(n, -8.0f, 8.0f, seed++));
    const auto y = rounded<S>(t::uniform(n, -2.0f, 2.0f, seed++));
    const auto g = rounded<S>(t::uniform(n, -1.0f, 1.0f, seed++));
    auto da = t::upload(store<S>(a)), dy = t::upload(store<S>(y)), dg = t::upload(store<S>(g));
    auto o1 = t::device_array<S>(n), o2 = t::device_array<S>(n);

    std::vector<float> want(n), want2(n);
    ditty::cpu::sigmoid_gate_forward(a.data(), y.data(), want.data(), n);
    auto got = t::same_under_all_schedules("sigmoid_gate_forward " + size, [&] {
      ditty::cuda::sigmoid_gate_forward(da.get(), dy.get(), o1.get(), n, nullptr);
      return t::download(o1);
    });
    expect_close("sigmoid_gate_forward " + size, got, want);

    ditty::cpu::sigmoid_gate_backward(a.data(), y.data(), g.data(), want.data(), want2.data(), n);
    auto both = t::same_under_all_schedules("sigmoid_gate_backward " + size, [&] {
      ditty::cuda::sigmoid_gate_backward(da.get(), dy.get(), dg.get(), o1.get(), o2.get(), n, nullptr);
      return std::make_tuple(t::download(o1), t::download(o2));
    });
    expect_close("sigmoid_gate_backward da " + size, std::get<0>(both), want);
    expect_close("sigmoid_gate_backward dy " + size, std::get<1>(both), want2);
    // one of the two gradients alone: the other buffer is left as it was
    {
      auto fresh = t::device_array<S>(n);
      ditty::cuda::sigmoid_gate_backward(da.get(), dy.get(), dg.get(), nullptr, o2.get(), n, nullptr);
      expect_close("sigmoid_gate_backward dy only " + size, t::download(o2), want2);
      ditty::cuda::sigmoid_gate_backward(da.get(), dy.get(), dg.get(), fresh.get(), nullptr, n, nullptr);
      expect_close("sigmoid_gate_backward da only " + size, t::download(fresh), want);
    }

    ditty::cpu::relu_square_forward(a.data(), want.data(), n);
    got = t::same_under_all_schedules("relu_square_forward " + size, [&] {
      ditty::cuda::relu_square_forward(da.get(), o1.get(), n, nullptr);
      return t::download(o1);
    });
    expect_close("relu_square_forward " + size, got, want);

    ditty::cpu::relu_square_backward(a.data(), g.data(), want.data(), n);
    got = t::same_under_all_schedules("relu_square_backward " + size, [&] {
      ditty::cuda::relu_square_backward(da.get(), dg.get(), o1.get(), n, nullptr);
      return t::download(o1);
    });
    expect_close("relu_square_backward " + size, got, want);
  }
}

DITTY_TEST(gates_f32) { gate_cases<float>(); }
DITTY_TEST(gates_bf16) { gate_cases<bf16>(); }

DITTY_TEST(time_mix_refuses_too_many_mixes) {
  const float* mixes[5] = {};
  float* outs[5] = {};
  bool threw = false;
  try {
    ditty::cuda::time_mix_forward(static_cast<const float*>(nullptr), nullptr, 1, 1, 1, mixes, 5, outs, nullptr);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  DITTY_EXPECT(threw, "n_mix = 5 accepted");
}

}  // namespace

DITTY_TEST_MAIN()
