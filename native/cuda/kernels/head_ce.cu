// Cross-entropy over a chunk of head logits, one block per row, and the deterministic loss sum
// (ditty/cuda/common.h).
#include <cmath>

#include "ditty/cuda/common.h"
#include "device_helpers.cuh"

namespace ditty::cuda {
namespace {
using namespace kdetail;

// A running (max, sum of exp(z - max)) pair. combine(a, b) and combine(b, a) give the same bits
// (each product rounded on its own), so the xor butterfly leaves every lane with the same pair.
struct MaxSum {
  float m, s;
};
__device__ __forceinline__ MaxSum combine(MaxSum a, MaxSum b) {
  if (b.s == 0.0f) return a;
  if (a.s == 0.0f) return b;
  const float m = fmaxf(a.m, b.m);
  return {m, add_rn(mul_rn(a.s, expf(a.m - m)), mul_rn(b.s, expf(b.m - m)))};
}
__device__ __forceinline__ void push(MaxSum& a, float z) {
  if (z > a.m) {
    a.s = add_rn(mul_rn(a.s, expf(a.m - z)), 1.0f);
    a.m = z;
  } else {
    a.s = add_rn(a.s, expf(z - a.m));
  }
}
__device__ __forceinline__ MaxSum warp_combine(MaxSum v) {
  for (int o = 16; o >= 1; o >>= 1) {
    const MaxSum w{__shfl_xor_sync(0xffffffffu, v.m, o), __shfl_xor_sync(0xffffffffu, v.s, o)};
    v = combine(v, w);
  }
  return v;
}

// This thread's elements of a row: a scalar head up to the first 16-byte boundary, 8-value units,
// a scalar tail. f(index, value) for the reads, f8(index, F8&) for read-modify-write units.
template <class S>
struct RowSplit {
  int64_t head, units, tail_start;
  __device__ RowSplit(const S* row, int64_t V) {
    const int64_t mis = static_cast<int64_t>((16 - (reinterpret_cast<uintptr_t>(row) & 15u)) & 15u) /
                        static_cast<int64_t>(sizeof(S));
    head = mis < V ? mis : V;
    units = (V - head) / 8;
    tail_start = head + 8 * units;
  }
};

template <class S>
__global__ void __launch_bounds__(kThreads) head_ce_kernel(S* logits, int64_t rows, int64_t V, const int32_t* targets,
                                                            const float* weights, float grad_scale, float* row_loss,
                                                            bool grad) {
  DITTY_SHARED(float, sh_m, [33]);
  DITTY_SHARED(float, sh_s, [33]);
  const int lane = static_cast<int>(threadIdx.x & 31u), warp = static_cast<int>(threadIdx.x >> 5);
  const int warps = static_cast<int>(blockDim.x >> 5);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    S* z = logits + r * V;
    const float w = weights[r];
    const RowSplit<S> sp(z, V);
    if (w == 0.0f) {
      if (threadIdx.x == 0) row_loss[r] = 0.0f;
      if (grad) {
        const F8 zero{};
        for (int64_t j = threadIdx.x; j < sp.head; j += blockDim.x) z[j] = from_f32<S>(0.0f);
        for (int64_t u = threadIdx.x; u < sp.units; u += blockDim.x) store8(z + sp.head + 8 * u, zero);
        for (int64_t j = sp.tail_start + threadIdx.x; j < V; j += blockDim.x) z[j] = from_f32<S>(0.0f);
      }
      continue;
    }
    const int32_t t = targets[r];
    // read before any thread can overwrite it with its gradient
    const float picked = threadIdx.x == 0 ? to_f32(z[t]) : 0.0f;
    MaxSum a{-INFINITY, 0.0f};
    for (int64_t j = threadIdx.x; j < sp.head; j += blockDim.x) push(a, to_f32(z[j]));
    for (int64_t u = threadIdx.x; u < sp.units; u += blockDim.x) {
      const F8 x = load8(z + sp.head + 8 * u);
      for (int k = 0; k < 8; k++) push(a, x.v[k]);
    }
    for (int64_t j = sp.tail_start + threadIdx.x; j < V; j += blockDim.x) push(a, to_f32(z[j]));
    a = warp_combine(a);
    if (lane == 0) {
      sh_m[warp] = a.m;
      sh_s[warp] = a.s;
    }
    __syncthreads();
    if (warp == 0) {
      MaxSum b = lane < warps ? MaxSum{sh_m[lane], sh_s[lane]} : MaxSum{-INFINITY, 0.0f};
      b = warp_combine(b);
      if (lane == 0) {
        sh_m[32] = b.m;
        sh_s[32] = b.s;
      }
    }
    __syncthreads();
    const float m = sh_m[32], s = sh_s[32];
    __syncthreads();  // sh_m/sh_s are rewritten for the next row
    if (threadIdx.x == 0) {
      const double lse = static_cast<double>(m) + log(static_cast<double>(s));
      row_loss[r] = static_cast<float>(static_cast<double>(w) * (lse - static_cast<double>(picked)));
    }
    if (!grad) continue;
    const float scale = grad_scale * w, inv = 1.0f / s;
    auto d = [&](int64_t j, float x) { return scale * (expf(x - m) * inv - (j == t ? 1.0f : 0.0f)); };
    for (int64_t j = threadIdx.x; j < sp.head; j += blockDim.x) z[j] = from_f32<S>(d(j, to_f32(z[j])));
    for (int64_t u = threadIdx.x; u < sp.units; u += blockDim.x) {
      const int64_t j0 = sp.head + 8 * u;
      F8 x = load8(z + j0);
      for (int k = 0; k < 8; k++) x.v[k] = d(j0 + k, x.v[k]);
      store8(z + j0, x);
    }
    for (int64_t j = sp.tail_start + threadIdx.x; j < V; j += blockDim.x) z[j] = from_f32<S>(d(j, to_f32(z[j])));
  }
}

template <class S>
void head_ce(S* logits, int64_t rows, int64_t V, const int32_t* targets, const float* weights, float grad_scale,
             float* row_loss, bool grad, cudaStream_t stream) {
  if (rows <= 0 || V <= 0) return;
  launch(head_ce_kernel<S>, dim3(static_cast<unsigned>(std::min<int64_t>(rows, kMaxBlocks))), dim3(kThreads), 0,
         stream, logits, rows, V, targets, weights, grad_scale, row_loss, grad);
}

__global__ void __launch_bounds__(kThreads) sum_to_double_kernel(const float* x, int64_t n, double* out,
                                                                  bool accumulate) {
  DITTY_SHARED(double, sh, [33]);
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += static_cast<double>(x[i]);
  acc = block_sum(acc, sh);
  if (threadIdx.x == 0) *out = accumulate ? *out + acc : acc;
}

}  // namespace

void head_cross_entropy_rows(float* logits, int64_t rows, int64_t V, const int32_t* targets, const float* weights,
                             float grad_scale, float* row_loss, bool grad, cudaStream_t stream) {
  head_ce(logits, rows, V, targets, weights, grad_scale, row_loss, grad, stream);
}
void head_cross_entropy_rows(__nv_bfloat16* logits, int64_t rows, int64_t V, const int32_t* targets,
                             const float* weights, float grad_scale, float* row_loss, bool grad, cudaStream_t stream) {
  head_ce(logits, rows, V, targets, weights, grad_scale, row_loss, grad, stream);
}

void sum_to_double(const float* x, int64_t n, double* out, bool accumulate, cudaStream_t stream) {
  launch(sum_to_double_kernel, dim3(1), dim3(kThreads), 0, stream, x, n, out, accumulate);
}

}  // namespace ditty::cuda
