// The LoRA dropout kernels (ditty/cuda/lora.h) against ditty::cpu::dropout_mask_value, bitwise:
// out = x * mask in float (bf16 out: that product rounded to nearest even), dx (+)= t * mask, for
// odd sizes, several p (0, dyadic, non-dyadic, 1), mask index offsets (one crossing 2^32), aligned
// and misaligned pointers; every output bitwise equal under every schedule. Also the whole LoRA
// forward (dropout kernel + the GEMMs written out here in the CPU's order) is the CPU's h.
#include <cstdint>
#include <string>
#include <vector>

#include "ditty/cuda/lora.h"
#include "ditty/cuda/testing.h"
#include "ditty/lora.h"

namespace t = ditty::cuda::testing;
using bf16 = __nv_bfloat16;

namespace {

using t::expect_bits;
using t::place;
using t::store;
using t::type_name;

std::vector<int64_t> sizes() {
  if (t::quick()) return {1, 33, 1031};
  return {1, 7, 33, 257, 1031, 4099};
}
const std::vector<double> kProbs = {0.0, 0.5, 0.1, 1.0 / 3.0, 1.0};

// In -> Out: x * mask
template <class In, class Out>
void dropout_cases() {
  uint64_t seed = 1;
  for (int64_t n : sizes()) {
    for (double p : kProbs) {
      for (uint64_t first : {uint64_t{0}, uint64_t{12345}, (uint64_t{1} << 32) - 3}) {
        for (int64_t off : {0, 1}) {
          const uint32_t rseed = 0x9e3779b9u + static_cast<uint32_t>(seed);
          const std::string what = std::string("lora_dropout ") + type_name<In>() + "->" + type_name<Out>() + " n" +
                                   std::to_string(n) + " p" + std::to_string(p) + " first" + std::to_string(first) +
                                   (off ? " misaligned" : "");
          const auto xs = store<In>(t::normal(n, 1.0f, seed++));
          const auto x = t::to_float(xs);
          std::vector<float> want(n);
          for (int64_t k = 0; k < n; k++) want[k] = x[k] * ditty::cpu::dropout_mask_value(rseed, first + k, p);
          auto dx = place(xs, off);
          auto dout = place(std::vector<Out>(n), off);
          const auto got = t::same_under_all_schedules(what, [&] {
            ditty::cuda::lora_dropout(dx.get(), dout.get(), n, p, rseed, first, nullptr);
            return t::download(dout.get(), n);
          });
          expect_bits(what, got, want);
          if (p == 1.0) {
            for (float v : t::to_float(got)) DITTY_EXPECT(v == 0.0f, what, ": p = 1 keeps a value");
          }
        }
      }
    }
  }
}

DITTY_TEST(dropout_f32) { dropout_cases<float, float>(); }
DITTY_TEST(dropout_bf16) { dropout_cases<bf16, bf16>(); }
DITTY_TEST(dropout_bf16_to_f32) { dropout_cases<bf16, float>(); }

// G -> D: dx (+)= t * mask
template <class G, class D>
void dropout_backward_cases() {
  uint64_t seed = 1000;
  for (int64_t n : sizes()) {
    for (double p : {0.0, 0.1, 1.0 / 3.0}) {
      for (bool accumulate : {false, true}) {
        for (int64_t off : {0, 1}) {
          const uint32_t rseed = 77u + static_cast<uint32_t>(seed);
          const uint64_t first = 5;
          const std::string what = std::string("lora_dropout_backward ") + type_name<G>() + "->" + type_name<D>() +
                                   " n" + std::to_string(n) + " p" + std::to_string(p) +
                                   (accumulate ? " accumulate" : "") + (off ? " misaligned" : "");
          const auto ts = store<G>(t::normal(n, 1.0f, seed++));
          const auto dx0s = store<D>(t::normal(n, 1.0f, seed++));
          const auto tv = t::to_float(ts), dx0 = t::to_float(dx0s);
          std::vector<float> want(n);
          for (int64_t k = 0; k < n; k++) {
            const float v = tv[k] * ditty::cpu::dropout_mask_value(rseed, first + k, p);
            want[k] = accumulate ? dx0[k] + v : v;
          }
          auto dt = place(ts, off);
          auto ddx = place(dx0s, off);
          const auto got = t::same_under_all_schedules(what, [&] {
            DITTY_CUDA_CHECK(cudaMemcpy(ddx.get(), dx0s.data(), n * sizeof(D), cudaMemcpyHostToDevice));
            ditty::cuda::lora_dropout_backward(dt.get(), ddx.get(), n, p, rseed, first, accumulate, nullptr);
            return t::download(ddx.get(), n);
          });
          expect_bits(what, got, want);
        }
      }
    }
  }
}

DITTY_TEST(dropout_backward_f32) { dropout_backward_cases<float, float>(); }
DITTY_TEST(dropout_backward_bf16) { dropout_backward_cases<bf16, bf16>(); }
DITTY_TEST(dropout_backward_f32_to_bf16) { dropout_backward_cases<float, bf16>(); }

// in place (out aliases x), and the mask the CPU's lora_forward applies: h = dropout(x) A^T with A
// the identity on the first r inputs picks the dropped-out x columns, so h has the values of x * mask.
DITTY_TEST(dropout_matches_lora_forward) {
  const int64_t rows = 7, in = 33, r = 33, out = 1;
  const double p = 0.25;
  const uint32_t seed = 4242;
  const auto x = t::normal(rows * in, 1.0f, 9);
  std::vector<float> A(r * in, 0.0f), B(out * r, 0.0f), h(rows * r), y(rows * out, 0.0f);
  for (int64_t j = 0; j < r; j++) A[j * in + j] = 1.0f;
  ditty::cpu::lora_forward(x.data(), rows, in, out, r, A.data(), B.data(), 1.0f, p, seed, h.data(), y.data());
  auto dx = t::upload(x);
  const auto got = t::same_under_all_schedules("dropout in place", [&] {
    DITTY_CUDA_CHECK(cudaMemcpy(dx.get(), x.data(), x.size() * sizeof(float), cudaMemcpyHostToDevice));
    ditty::cuda::lora_dropout(dx.get(), dx.get(), rows * in, p, seed, 0, nullptr);
    return t::download(dx);
  });
  // equal values (a dropped negative x is -0 here; the GEMM's sum of zeros makes it +0)
  DITTY_EXPECT(t::max_abs_error(got, h) == 0.0, "dropout in place differs from lora_forward's h");
}

}  // namespace

DITTY_TEST_MAIN()
