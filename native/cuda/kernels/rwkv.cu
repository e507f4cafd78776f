// RWKV-4 token shift + time mix and the two gates (ditty/cuda/rwkv.h): elementwise, grid-stride.
#include <stdexcept>
#include <string>

#include "ditty/cuda/runtime.h"
#include "device_helpers.cuh"

#include "ditty/cuda/rwkv.h"

namespace ditty::cuda {
namespace {

constexpr int kMaxMix = 4;

using namespace kdetail;

// The n_mix mixes' coefficients [C], each with the tensor that goes with it (its output forward,
// its gradient backward); passed by value, so the kernels read the pointers from parameter space.
template <class P>
struct Mixes {
  const float* mix[kMaxMix];
  P tensor[kMaxMix];
};
template <class P>
Mixes<P> mixes_of(const float* const* mixes, const P* tensors, int n_mix) {
  if (n_mix < 1 || n_mix > kMaxMix) throw std::invalid_argument("time mix: n_mix must be 1.." + std::to_string(kMaxMix));
  Mixes<P> m{};
  for (int j = 0; j < n_mix; j++) {
    m.mix[j] = mixes[j];
    m.tensor[j] = tensors[j];
  }
  return m;
}

template <class S>
__global__ void __launch_bounds__(kThreads) time_mix_forward_kernel(const S* x, const S* state, int64_t T, int64_t C,
                                                                     int64_t n, Mixes<S*> mo, int n_mix) {
  for (int64_t i = global_thread(); i < n; i += global_threads()) {
    const int64_t c = i % C, r = i / C, t = r % T;
    const bool has_prev = t > 0 || state != nullptr;
    const float cur = ld(x, i);
    const float prev = t > 0 ? ld(x, i - C) : (state ? ld(state, r / T * C + c) : 0.0f);
DITTY_UNROLL
    for (int j = 0; j < kMaxMix; j++) {  // constant indices keep the pointer arrays in parameter space
      if (j >= n_mix) break;
      const float m = mo.mix[j][c];
      float y = mul_rn(cur, m);
      if (has_prev) y = add_rn(y, mul_rn(prev, 1.0f - m));
      st(mo.tensor[j], i, y);
    }
  }
}

template <class S>
__global__ void __launch_bounds__(kThreads) time_mix_backward_kernel(Mixes<const S*> mg, int n_mix, int64_t T, int64_t C,
                                                                      int64_t n, S* dx, bool accumulate) {
  for (int64_t i = global_thread(); i < n; i += global_threads()) {
    const int64_t c = i % C;
    const bool has_next = i / C % T + 1 < T;
    float acc = accumulate ? ld(dx, i) : 0.0f;
DITTY_UNROLL
    for (int j = 0; j < kMaxMix; j++) {
      if (j >= n_mix) break;
      const float m = mg.mix[j][c];
      acc = fmaf(ld(mg.tensor[j], i), m, acc);
      if (has_next) acc = fmaf(ld(mg.tensor[j], i + C), 1.0f - m, acc);
    }
    st(dx, i, acc);
  }
}

__device__ __forceinline__ float sigmoid(float a) { return 1.0f / (1.0f + expf(-a)); }

template <class S>
__global__ void __launch_bounds__(kThreads) sigmoid_gate_forward_kernel(const S* a, const S* y, S* out, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += global_threads()) st(out, i, mul_rn(sigmoid(ld(a, i)), ld(y, i)));
}

template <class S>
__global__ void __launch_bounds__(kThreads) sigmoid_gate_backward_kernel(const S* a, const S* y, const S* dout, S* da,
                                                                          S* dy, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += global_threads()) {
    const float s = sigmoid(ld(a, i)), g = ld(dout, i);
    if (da) st(da, i, mul_rn(mul_rn(g, ld(y, i)), mul_rn(s, 1.0f - s)));
    if (dy) st(dy, i, mul_rn(g, s));
  }
}

template <class S>
__global__ void __launch_bounds__(kThreads) relu_square_forward_kernel(const S* x, S* out, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += global_threads()) {
    const float r = fmaxf(ld(x, i), 0.0f);
    st(out, i, mul_rn(r, r));
  }
}

template <class S>
__global__ void __launch_bounds__(kThreads) relu_square_backward_kernel(const S* x, const S* dy, S* dx, int64_t n) {
  for (int64_t i = global_thread(); i < n; i += global_threads()) {
    st(dx, i, mul_rn(ld(dy, i), mul_rn(fmaxf(ld(x, i), 0.0f), 2.0f)));
  }
}

template <class S>
void time_mix_forward_impl(const S* x, const S* state, int64_t B, int64_t T, int64_t C, const float* const* mixes,
                           int n_mix, S* const* outs, cudaStream_t stream) {
  const Mixes<S*> mo = mixes_of(mixes, outs, n_mix);
  const int64_t n = B * T * C;
  if (n == 0) return;
  launch(time_mix_forward_kernel<S>, blocks_for(n), kThreads, 0, stream, x, state, T, C, n, mo, n_mix);
}

template <class S>
void time_mix_backward_impl(const S* const* douts, const float* const* mixes, int n_mix, int64_t B, int64_t T,
                            int64_t C, S* dx, bool accumulate, cudaStream_t stream) {
  const Mixes<const S*> mg = mixes_of(mixes, douts, n_mix);
  const int64_t n = B * T * C;
  if (n == 0) return;
  launch(time_mix_backward_kernel<S>, blocks_for(n), kThreads, 0, stream, mg, n_mix, T, C, n, dx, accumulate);
}

}  // namespace

void time_mix_forward(const float* x, const float* state, int64_t B, int64_t T, int64_t C, const float* const* mixes,
                      int n_mix, float* const* outs, cudaStream_t stream) {
  time_mix_forward_impl(x, state, B, T, C, mixes, n_mix, outs, stream);
}
void time_mix_forward(const __nv_bfloat16* x, const __nv_bfloat16* state, int64_t B, int64_t T, int64_t C,
                      const float* const* mixes, int n_mix, __nv_bfloat16* const* outs, cudaStream_t stream) {
  time_mix_forward_impl(x, state, B, T, C, mixes, n_mix, outs, stream);
}
void time_mix_backward(const float* const* douts, const float* const* mixes, int n_mix, int64_t B, int64_t T,
                       int64_t C, float* dx, bool accumulate, cudaStream_t stream) {
  time_mix_backward_impl(douts, mixes, n_mix, B, T, C, dx, accumulate, stream);
}
void time_mix_backward(const __nv_bfloat16* const* douts, const float* const* mixes, int n_mix, int64_t B, int64_t T,
                       int64_t C, __nv_bfloat16* dx, bool accumulate, cudaStream_t stream) {
  time_mix_backward_impl(douts, mixes, n_mix, B, T, C, dx, accumulate, stream);
}

#define DITTY_RWKV_GATES(S)                                                                                        \
  void sigmoid_gate_forward(const S* a, const S* y, S* out, int64_t n, cudaStream_t stream) {                     \
    if (n > 0) launch(sigmoid_gate_forward_kernel<S>, blocks_for(n), kThreads, 0, stream, a, y, out, n);          \
  }                                                                                                                \
  void sigmoid_gate_backward(const S* a, const S* y, const S* dout, S* da, S* dy, int64_t n, cudaStream_t stream) { \
    if (n > 0 && (da || dy))                                                                                       \
      launch(sigmoid_gate_backward_kernel<S>, blocks_for(n), kThreads, 0, stream, a, y, dout, da, dy, n);         \
  }                                                                                                                \
  void relu_square_forward(const S* x, S* out, int64_t n, cudaStream_t stream) {                                   \
    if (n > 0) launch(relu_square_forward_kernel<S>, blocks_for(n), kThreads, 0, stream, x, out, n);              \
  }                                                                                                                \
  void relu_square_backward(const S* x, const S* dy, S* dx, int64_t n, cudaStream_t stream) {                      \
    if (n > 0) launch(relu_square_backward_kernel<S>, blocks_for(n), kThreads, 0, stream, x, dy, dx, n);          \
  }
DITTY_RWKV_GATES(float)
DITTY_RWKV_GATES(__nv_bfloat16)
#undef DITTY_RWKV_GATES

}  // namespace ditty::cuda
