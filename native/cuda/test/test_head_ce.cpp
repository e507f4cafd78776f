// Cross-entropy on a chunk of logits (ditty/cuda/common.h: head_cross_entropy_rows, sum_to_double)
// against a double-precision reference and against the CPU twin ditty::cpu::head_cross_entropy
// (with an identity head, so that its logits are the hidden rows and its dhidden is dlogits).
// Odd rows and vocabularies (1 .. 50277), float and bf16 logits, rows with weight 0, targets at
// both ends; every output bitwise equal under every schedule.
// Tolerances, relative to max(|want|, 1e-3 max|want|): row losses and float dlogits 2e-5 (float
// sums and CUDA's expf against double), bf16 dlogits 1/128 (the final rounding to bf16).
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

using t::expect_close;
using t::store;
using t::type_name;

struct Reference {
  std::vector<float> loss, dlogits;
};
Reference reference(const std::vector<float>& z, int64_t rows, int64_t V, const std::vector<int32_t>& targets,
                    const std::vector<float>& weights, float grad_scale) {
  Reference r{std::vector<float>(rows), std::vector<float>(rows * V)};
  for (int64_t i = 0; i < rows; i++) {
    const float* zr = z.data() + i * V;
    const double w = weights[i];
    if (w == 0.0) {
      r.loss[i] = 0.0f;
      continue;
    }
    double m = zr[0];
    for (int64_t j = 1; j < V; j++) m = std::max(m, static_cast<double>(zr[j]));
    double s = 0;
    for (int64_t j = 0; j < V; j++) s += std::exp(zr[j] - m);
    r.loss[i] = static_cast<float>(w * (m + std::log(s) - zr[targets[i]]));
    for (int64_t j = 0; j < V; j++) {
      const double p = std::exp(zr[j] - m) / s - (j == targets[i] ? 1.0 : 0.0);
      r.dlogits[i * V + j] = static_cast<float>(static_cast<double>(grad_scale) * w * p);
    }
  }
  return r;
}

struct Inputs {
  std::vector<float> z, weights;
  std::vector<int32_t> targets;
};
template <class S>
Inputs inputs(int64_t rows, int64_t V, uint64_t seed) {
  Inputs in{t::to_float(store<S>(t::normal(rows * V, 3.0f, seed))), std::vector<float>(rows), std::vector<int32_t>(rows)};
  t::Rng r(seed + 1);
  for (int64_t i = 0; i < rows; i++) {
    in.targets[i] = static_cast<int32_t>(i == 0 ? 0 : i == 1 ? V - 1 : r.below(V));
    in.weights[i] = (i % 5 == 3) ? 0.0f : (i % 2 ? 1.0f : 0.5f);
    // one confident row: the target far above the rest (p_t - 1 near 0)
    if (i == 2) in.z[i * V + in.targets[i]] = 40.0f;
  }
  return in;
}

template <class S>
void rows_case(int64_t rows, int64_t V, bool grad, uint64_t seed) {
  const std::string what = std::string("head_cross_entropy_rows ") + type_name<S>() + " rows" + std::to_string(rows) +
                           " V" + std::to_string(V) + (grad ? " grad" : "");
  const Inputs in = inputs<S>(rows, V, seed);
  const float grad_scale = 1.0f / 37.0f;
  const Reference want = reference(in.z, rows, V, in.targets, in.weights, grad_scale);
  auto dz = t::device_array<S>(rows * V);
  auto dt = t::upload(in.targets);
  auto dw = t::upload(in.weights);
  auto dloss = t::device_array<float>(rows);
  const auto got = t::same_under_all_schedules(what, [&] {
    t::copy_to_device(dz, store<S>(in.z));
    ditty::cuda::head_cross_entropy_rows(dz.get(), rows, V, dt.get(), dw.get(), grad_scale, dloss.get(), grad,
                                         nullptr);
    return std::make_tuple(t::download(dloss), t::download(dz));
  });
  expect_close(what + " loss", std::get<0>(got), want.loss, 2e-5);
  if (grad) {
    expect_close(what + " dlogits", std::get<1>(got), want.dlogits, std::is_same_v<S, float> ? 2e-5 : 1.0 / 128);
  } else {
    DITTY_EXPECT(t::bitwise_equal(std::get<1>(got), store<S>(in.z)), what, ": the logits changed without grad");
  }
}

struct Shape {
  int64_t rows, V;
};

template <class S>
void rows_cases() {
  std::vector<Shape> shapes = {{1, 1}, {7, 7}, {4, 33}, {33, 257}, {9, 1031}, {3, 4099}};
  if (!t::quick()) shapes.push_back({3, 50277});
  uint64_t seed = 1;
  for (const Shape& s : shapes) {
    rows_case<S>(s.rows, s.V, true, seed++);
    rows_case<S>(s.rows, s.V, false, seed++);
  }
}

DITTY_TEST(rows_f32) { rows_cases<float>(); }
DITTY_TEST(rows_bf16) { rows_cases<bf16>(); }

// Against ditty::cpu::head_cross_entropy with head = identity (C = V): its loss sum is the sum of
// our row losses, its dhidden our dlogits.
DITTY_TEST(matches_cpu_twin) {
  for (const Shape& s : std::vector<Shape>{{7, 33}, {11, 257}}) {
    const std::string what = "cpu twin rows" + std::to_string(s.rows) + " V" + std::to_string(s.V);
    const Inputs in = inputs<float>(s.rows, s.V, 99 + s.V);
    std::vector<float> head(s.V * s.V, 0.0f), dhidden(s.rows * s.V);
    for (int64_t j = 0; j < s.V; j++) head[j * s.V + j] = 1.0f;
    const float grad_scale = 0.25f;
    const double want_loss =
        ditty::cpu::head_cross_entropy(in.z.data(), s.rows, s.V, head.data(), s.V, in.targets.data(), in.weights.data(),
                                       grad_scale, dhidden.data(), false, 4);
    auto dz = t::upload(in.z);
    auto dt = t::upload(in.targets);
    auto dw = t::upload(in.weights);
    auto dloss = t::device_array<float>(s.rows);
    auto dsum = t::device_array<double>(1);
    const auto got = t::same_under_all_schedules(what, [&] {
      t::copy_to_device(dz, in.z);
      ditty::cuda::head_cross_entropy_rows(dz.get(), s.rows, s.V, dt.get(), dw.get(), grad_scale, dloss.get(), true,
                                           nullptr);
      ditty::cuda::sum_to_double(dloss.get(), s.rows, dsum.get(), false, nullptr);
      return std::make_tuple(t::download(dsum), t::download(dz));
    });
    const double loss = std::get<0>(got)[0];
    DITTY_EXPECT(std::fabs(loss - want_loss) <= 2e-5 * std::fabs(want_loss), what, ": loss ", loss, " vs the CPU's ",
                 want_loss);
    expect_close(what + " dlogits", std::get<1>(got), dhidden, 2e-5);
  }
}

DITTY_TEST(sum_to_double) {
  uint64_t seed = 500;
  for (int64_t n : {0, 1, 33, 1031, 70001}) {
    const auto x = t::normal(n, 5.0f, seed++);
    double want = 0;
    for (float v : x) want += v;
    auto dx = t::upload(x);
    auto out = t::device_array<double>(1);
    const auto got = t::same_under_all_schedules("sum_to_double n" + std::to_string(n), [&] {
      t::copy_to_device(out, std::vector<double>{1.5});
      ditty::cuda::sum_to_double(dx.get(), n, out.get(), false, nullptr);
      const auto first = t::download(out);
      ditty::cuda::sum_to_double(dx.get(), n, out.get(), true, nullptr);
      return std::make_tuple(first, t::download(out));
    });
    const double a = std::get<0>(got)[0], b = std::get<1>(got)[0];
    DITTY_EXPECT(std::fabs(a - want) <= 1e-12 * std::max(1.0, std::fabs(want)), "sum_to_double n", n, ": ", a, " vs ",
                 want);
    DITTY_EXPECT(b == a + a, "sum_to_double accumulate n", n, ": ", b, " vs ", a + a);
  }
}

}  // namespace

DITTY_TEST_MAIN()
