// GPT-NeoX qkv split + partial rotary and GELU (ditty/cuda/neox.h), in the CPU twin's order of
// operations (native/cpu/neox.cpp, neox_kernels.h): each product and sum rounded on its own.
#include <algorithm>
#include <stdexcept>

#include "ditty/cuda/neox.h"
#include "ditty/cuda/runtime.h"
#include "device_helpers.cuh"

namespace ditty::cuda {
namespace {

constexpr int kRowThreads = 128;

using namespace kdetail;

// cos, sin [half] of position pos into shared memory (then a barrier).
__device__ __forceinline__ void rotary_row(float* cs, float* sn, int64_t pos, int64_t half, int64_t R, double base) {
  for (int64_t m = threadIdx.x; m < half; m += blockDim.x) {
    const double angle = static_cast<double>(pos) * pow(base, (-2.0 * static_cast<double>(m)) / static_cast<double>(R));
    cs[m] = static_cast<float>(cos(angle));
    sn[m] = static_cast<float>(sin(angle));
  }
  __syncthreads();
}

// One position (b, t) per block: element e of the row [heads][3][d].
template <class S>
__global__ void __launch_bounds__(kRowThreads) rotary_forward_kernel(const S* qkv, int64_t T, int64_t heads, int64_t d,
                                                                      int64_t R, double base, int64_t offset, S* q, S* k,
                                                                      S* v) {
  DITTY_DYNAMIC_SHARED(float, table);
  const int64_t r = blockIdx.x, t = r % T, b = r / T, half = R / 2, width = heads * 3 * d;
  float* cs = table;
  float* sn = table + half;
  rotary_row(cs, sn, offset + t, half, R, base);
  const S* src = qkv + r * width;
  for (int64_t e = threadIdx.x; e < width; e += blockDim.x) {
    const int64_t h = e / (3 * d), part = e / d % 3, i = e % d;
    const int64_t dst = ((b * heads + h) * T + t) * d + i;
    S* out = part == 0 ? q : part == 1 ? k : v;
    if (part == 2 || i >= R) {
      out[dst] = src[e];
    } else if (i < half) {  // x1 c + (-x2) s
      st(out, dst, add_rn(mul_rn(ld(src, e), cs[i]), mul_rn(-ld(src, e + half), sn[i])));
    } else {  // x2 c + x1 s
      const int64_t m = i - half;
      st(out, dst, add_rn(mul_rn(ld(src, e), cs[m]), mul_rn(ld(src, e - half), sn[m])));
    }
  }
}

template <class S>
__global__ void __launch_bounds__(kRowThreads) rotary_backward_kernel(const S* dq, const S* dk, const S* dv, int64_t T,
                                                                       int64_t heads, int64_t d, int64_t R, double base,
                                                                       int64_t offset, S* dqkv) {
  DITTY_DYNAMIC_SHARED(float, table);
  const int64_t r = blockIdx.x, t = r % T, b = r / T, half = R / 2, width = heads * 3 * d;
  float* cs = table;
  float* sn = table + half;
  rotary_row(cs, sn, offset + t, half, R, base);
  S* dst = dqkv + r * width;
  for (int64_t e = threadIdx.x; e < width; e += blockDim.x) {
    const int64_t h = e / (3 * d), part = e / d % 3, i = e % d;
    const int64_t src = ((b * heads + h) * T + t) * d + i;
    const S* g = part == 0 ? dq : part == 1 ? dk : dv;
    if (part == 2 || i >= R) {
      dst[e] = g[src];
    } else if (i < half) {  // d1 c + d2 s
      st(dst, e, add_rn(mul_rn(ld(g, src), cs[i]), mul_rn(ld(g, src + half), sn[i])));
    } else {  // d2 c - d1 s
      const int64_t m = i - half;
      st(dst, e, add_rn(mul_rn(ld(g, src), cs[m]), -mul_rn(ld(g, src - half), sn[m])));
    }
  }
}

constexpr float kSqrtHalf = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
constexpr float kGeluA = 0.044715f;
constexpr float kGeluA3 = static_cast<float>(3 * 0.044715);

float gelu_constant(Gelu kind) {
  return kind == Gelu::Fast ? 0.7978845608f : static_cast<float>(0.79788456080286536);  // sqrt(2/pi)
}

__device__ __forceinline__ float gelu_value(float x, bool erf_form, float c) {
  const float half_x = mul_rn(x, 0.5f);
  if (erf_form) return mul_rn(half_x, add_rn(erff(mul_rn(x, kSqrtHalf)), 1.0f));
  const float inner = mul_rn(mul_rn(x, c), add_rn(mul_rn(mul_rn(x, x), kGeluA), 1.0f));
  return mul_rn(half_x, add_rn(tanhf(inner), 1.0f));
}

__device__ __forceinline__ float gelu_grad(float x, float dy, bool erf_form, float c) {
  const float x2 = mul_rn(x, x);
  float d;
  if (erf_form) {  // 0.5 (1 + erf(x/sqrt2)) + x exp(-x^2/2) / sqrt(2 pi)
    const float e = erff(mul_rn(x, kSqrtHalf));
    const float density = mul_rn(expf(mul_rn(x2, -0.5f)), kInvSqrt2Pi);
    d = add_rn(mul_rn(add_rn(e, 1.0f), 0.5f), mul_rn(x, density));
  } else {  // 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2)
    const float t = tanhf(mul_rn(mul_rn(x, c), add_rn(mul_rn(x2, kGeluA), 1.0f)));
    const float d_inner = mul_rn(add_rn(mul_rn(x2, kGeluA3), 1.0f), c);
    const float slope = mul_rn(mul_rn(mul_rn(x, 0.5f), 1.0f - mul_rn(t, t)), d_inner);
    d = add_rn(mul_rn(add_rn(t, 1.0f), 0.5f), slope);
  }
  return mul_rn(dy, d);
}


template <class S>
__global__ void __launch_bounds__(kThreads) gelu_forward_kernel(const S* x, S* out, int64_t n, bool erf_form, float c) {
  for (int64_t i = global_thread(); i < n; i += global_threads()) st(out, i, gelu_value(ld(x, i), erf_form, c));
}

template <class S>
__global__ void __launch_bounds__(kThreads) gelu_backward_kernel(const S* x, const S* dy, S* dx, int64_t n, bool erf_form,
                                                                  float c) {
  for (int64_t i = global_thread(); i < n; i += global_threads()) st(dx, i, gelu_grad(ld(x, i), ld(dy, i), erf_form, c));
}


void check_rotary(int64_t d, int64_t R) {
  if (R < 0 || R > d || R % 2 != 0) throw std::invalid_argument("qkv rotary: R must be even and at most d");
}

template <class S>
void rotary_forward_impl(const S* qkv, int64_t B, int64_t T, int64_t heads, int64_t d, int64_t R, double base,
                         int64_t offset, S* q, S* k, S* v, cudaStream_t stream) {
  check_rotary(d, R);
  if (B * T * heads * d == 0) return;
  launch(rotary_forward_kernel<S>, static_cast<unsigned>(B * T), kRowThreads, sizeof(float) * R, stream, qkv, T, heads,
         d, R, base, offset, q, k, v);
}

template <class S>
void rotary_backward_impl(const S* dq, const S* dk, const S* dv, int64_t B, int64_t T, int64_t heads, int64_t d,
                          int64_t R, double base, int64_t offset, S* dqkv, cudaStream_t stream) {
  check_rotary(d, R);
  if (B * T * heads * d == 0) return;
  launch(rotary_backward_kernel<S>, static_cast<unsigned>(B * T), kRowThreads, sizeof(float) * R, stream, dq, dk, dv,
         T, heads, d, R, base, offset, dqkv);
}

}  // namespace

void qkv_rotary_forward(const float* qkv, int64_t B, int64_t T, int64_t heads, int64_t d, int64_t R, double base,
                        int64_t offset, float* q, float* k, float* v, cudaStream_t stream) {
  rotary_forward_impl(qkv, B, T, heads, d, R, base, offset, q, k, v, stream);
}
void qkv_rotary_forward(const __nv_bfloat16* qkv, int64_t B, int64_t T, int64_t heads, int64_t d, int64_t R,
                        double base, int64_t offset, __nv_bfloat16* q, __nv_bfloat16* k, __nv_bfloat16* v,
                        cudaStream_t stream) {
  rotary_forward_impl(qkv, B, T, heads, d, R, base, offset, q, k, v, stream);
}
void qkv_rotary_backward(const float* dq, const float* dk, const float* dv, int64_t B, int64_t T, int64_t heads,
                         int64_t d, int64_t R, double base, int64_t offset, float* dqkv, cudaStream_t stream) {
  rotary_backward_impl(dq, dk, dv, B, T, heads, d, R, base, offset, dqkv, stream);
}
void qkv_rotary_backward(const __nv_bfloat16* dq, const __nv_bfloat16* dk, const __nv_bfloat16* dv, int64_t B,
                         int64_t T, int64_t heads, int64_t d, int64_t R, double base, int64_t offset,
                         __nv_bfloat16* dqkv, cudaStream_t stream) {
  rotary_backward_impl(dq, dk, dv, B, T, heads, d, R, base, offset, dqkv, stream);
}

void gelu_forward(const float* x, float* out, int64_t n, Gelu kind, cudaStream_t stream) {
  if (n > 0) launch(gelu_forward_kernel<float>, blocks_for(n), kThreads, 0, stream, x, out, n, kind == Gelu::Erf, gelu_constant(kind));
}
void gelu_forward(const __nv_bfloat16* x, __nv_bfloat16* out, int64_t n, Gelu kind, cudaStream_t stream) {
  if (n > 0) {
    launch(gelu_forward_kernel<__nv_bfloat16>, blocks_for(n), kThreads, 0, stream, x, out, n, kind == Gelu::Erf,
           gelu_constant(kind));
  }
}
void gelu_backward(const float* x, const float* dy, float* dx, int64_t n, Gelu kind, cudaStream_t stream) {
  if (n > 0) {
    launch(gelu_backward_kernel<float>, blocks_for(n), kThreads, 0, stream, x, dy, dx, n, kind == Gelu::Erf,
           gelu_constant(kind));
  }
}
void gelu_backward(const __nv_bfloat16* x, const __nv_bfloat16* dy, __nv_bfloat16* dx, int64_t n, Gelu kind,
                   cudaStream_t stream) {
  if (n > 0) {
    launch(gelu_backward_kernel<__nv_bfloat16>, blocks_for(n), kThreads, 0, stream, x, dy, dx, n, kind == Gelu::Erf,
           gelu_constant(kind));
  }
}

}  // namespace ditty::cuda
