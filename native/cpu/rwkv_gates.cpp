// RWKV-4 gates: sigmoid(r) * y and relu(k)^2, forward and backward, one pass over memory.
#include "common_simd.h"
#include "ditty/parallel.h"
#include "ditty/rwkv.h"

namespace ditty::cpu {
namespace {
#define DITTY_SIMD_BODY "rwkv_gates.inc"
#include "common_simd_instantiate.h"

constexpr size_t kGrain = 1 << 15;
}  // namespace

void sigmoid_gate_forward(const float* a, const float* y, float* out, int64_t n) {
  simd::Level lvl = simd::level();
  parallel_for(static_cast<size_t>(n), kGrain, [&](size_t i0, size_t i1) {
    DITTY_SIMD_DISPATCH(lvl, sigmoid_gate_forward_range, a + i0, y + i0, out + i0, static_cast<int64_t>(i1 - i0));
  });
}

void sigmoid_gate_backward(const float* a, const float* y, const float* dout, float* da, float* dy, int64_t n) {
  simd::Level lvl = simd::level();
  parallel_for(static_cast<size_t>(n), kGrain, [&](size_t i0, size_t i1) {
    DITTY_SIMD_DISPATCH(lvl, sigmoid_gate_backward_range, a + i0, y + i0, dout + i0, da ? da + i0 : nullptr,
                        dy ? dy + i0 : nullptr, static_cast<int64_t>(i1 - i0));
  });
}

void relu_square_forward(const float* x, float* out, int64_t n) {
  simd::Level lvl = simd::level();
  parallel_for(static_cast<size_t>(n), kGrain, [&](size_t i0, size_t i1) {
    DITTY_SIMD_DISPATCH(lvl, relu_square_forward_range, x + i0, out + i0, static_cast<int64_t>(i1 - i0));
  });
}

void relu_square_backward(const float* x, const float* dy, float* dx, int64_t n) {
  simd::Level lvl = simd::level();
  parallel_for(static_cast<size_t>(n), kGrain, [&](size_t i0, size_t i1) {
    DITTY_SIMD_DISPATCH(lvl, relu_square_backward_range, x + i0, dy + i0, dx + i0, static_cast<int64_t>(i1 - i0));
  });
}

}  // namespace ditty::cpu
