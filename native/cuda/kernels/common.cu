// Embedding gather, layer norm forward/backward (residual add fused), elementwise add/scale and
// storage conversions (ditty/cuda/common.h).
#include "ditty/cuda/common.h"

#include "device_helpers.cuh"

namespace ditty::cuda {
namespace {
using namespace kdetail;

// ---- elementwise ----

struct AddOp {
  __device__ float operator()(float x, float y) const { return add_rn(x, y); }
};
struct ScaleOp {
  float s;
  __device__ float operator()(float x, float) const { return mul_rn(x, s); }
};
struct CopyOp {
  __device__ float operator()(float x, float) const { return x; }
};

// out[i] = op(a[i], b ? b[i] : 0), eight at a time when `vec` (every pointer 16-byte aligned).
// out may alias a or b: each element is read and written by one thread.
template <class Op, class A, class B, class O>
__global__ void __launch_bounds__(kThreads) map_kernel(const A* a, const B* b, O* out, int64_t n, Op op, bool vec) {
  for_each_value(
      n, vec,
      [&](int64_t u) {
        const F8 x = load8(a + 8 * u);
        F8 y{};
        if (b) y = load8(b + 8 * u);
        F8 r;
        for (int k = 0; k < 8; k++) r.v[k] = op(x.v[k], y.v[k]);
        store8(out + 8 * u, r);
      },
      [&](int64_t i) { out[i] = from_f32<O>(op(to_f32(a[i]), b ? to_f32(b[i]) : 0.0f)); });
}

template <class Op, class A, class B, class O>
void map(const A* a, const B* b, O* out, int64_t n, Op op, cudaStream_t stream) {
  if (n <= 0) return;
  const bool vec = aligned16(a) && aligned16(b) && aligned16(out);
  launch(map_kernel<Op, A, B, O>, dim3(blocks_for_units(n, vec)), dim3(kThreads), 0, stream, a, b, out, n, op,
         vec);
}

// ---- embedding ----

template <class S>
__global__ void __launch_bounds__(kThreads) embedding_kernel(const int32_t* ids, int64_t n, const S* table, int64_t C,
                                                              S* out, bool vec) {
  if (vec) {
    const int64_t per_row = C / 8, units = n * per_row;
    for (int64_t u = global_thread(); u < units; u += global_threads()) {
      const int64_t r = u / per_row, c = (u - r * per_row) * 8;
      store16(out + r * C + c, load16(table + static_cast<int64_t>(ids[r]) * C + c));
      if constexpr (sizeof(S) == 4) store16(out + r * C + c + 4, load16(table + static_cast<int64_t>(ids[r]) * C + c + 4));
    }
    return;
  }
  const int64_t total = n * C;
  for (int64_t i = global_thread(); i < total; i += global_threads()) {
    const int64_t r = i / C, c = i - r * C;
    out[i] = table[static_cast<int64_t>(ids[r]) * C + c];
  }
}

template <class S>
void embedding(const int32_t* ids, int64_t n, const S* table, int64_t C, S* out, cudaStream_t stream) {
  if (n <= 0 || C <= 0) return;
  const bool vec = C % 8 == 0 && aligned16(table) && aligned16(out);
  launch(embedding_kernel<S>, dim3(blocks_for(vec ? n * (C / 8) : n * C)), dim3(kThreads), 0, stream, ids, n, table, C,
         out, vec);
}

// ---- layer norm ----

// Threads per row block: enough for one access unit each (8 values vectorised), 32..256.
unsigned row_threads(int64_t units) {
  return static_cast<unsigned>(std::clamp<int64_t>((units + 31) / 32 * 32, 32, kThreads));
}

// Visits this thread's units of a row in order: f(index, values), 8 values (kVec, index a multiple
// of 8) or 1 (in values.v[0]).
template <bool kVec, class S, class F>
__device__ __forceinline__ void for_row(const S* row, int64_t C, F&& f) {
  if constexpr (kVec) {
    for (int64_t u = threadIdx.x; u < C / 8; u += blockDim.x) f(8 * u, load8(row + 8 * u));
  } else {
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      F8 x;
      x.v[0] = to_f32(row[c]);
      f(c, x);
    }
  }
}

template <bool kVec, class S>
__device__ __forceinline__ void put(S* row, int64_t c, const F8& y) {
  if constexpr (kVec) {
    store8(row + c, y);
  } else {
    row[c] = from_f32<S>(y.v[0]);
  }
}

template <bool kVec>
__device__ __forceinline__ F8 get_params(const float* p, int64_t c) {
  if constexpr (kVec) {
    return load8(p + c);
  } else {
    F8 x;
    x.v[0] = p[c];
    return x;
  }
}

// One block per row, three passes (each thread's values in order, then the fixed block tree):
// the mean about a shift (the row's first value, near the mean), kept as hi + lo floats so that
// rows with |mean| >> std keep their small deviations (as the CPU twin does); the mean squared
// deviation; out = ((x - hi) - lo) rstd w + b. With `r` the row is first a + r, rounded to S and
// written to `sum`; the statistics and output use the rounded values.
template <bool kVec, class S>
__global__ void __launch_bounds__(kThreads) layernorm_forward_kernel(const S* a, const S* r, S* sum, const float* w,
                                                                      const float* b, int64_t N, int64_t C, float eps,
                                                                      S* out, float* mean, float* rstd) {
  constexpr int kN = kVec ? 8 : 1;
  DITTY_SHARED(float, sh, [33]);
  const float inv_c = 1.0f / static_cast<float>(C);
  for (int64_t row = blockIdx.x; row < N; row += gridDim.x) {
    const S* x = a + row * C;
    // from the inputs, before any thread writes `sum` (which may alias a or r)
    const float shift = r ? to_f32(from_f32<S>(add_rn(to_f32(x[0]), to_f32(r[row * C])))) : to_f32(x[0]);
    float s1 = 0.0f;
    if (r) {
      __syncthreads();
      S* srow = sum + row * C;
      for_row<kVec>(x, C, [&](int64_t c, F8 v) {
        F8 o;
        if constexpr (kVec) {
          o = load8(r + row * C + c);
        } else {
          o.v[0] = to_f32(r[row * C + c]);
        }
        for (int k = 0; k < kN; k++) {
          v.v[k] = to_f32(from_f32<S>(add_rn(v.v[k], o.v[k])));
          s1 += v.v[k] - shift;
        }
        put<kVec>(srow, c, v);
      });
      x = srow;  // the later passes read back what this thread wrote
    } else {
      for_row<kVec>(x, C, [&](int64_t, F8 v) {
        for (int k = 0; k < kN; k++) s1 += v.v[k] - shift;
      });
    }
    const float d = block_sum(s1, sh) * inv_c;
    // hi + lo = shift + d exactly (TwoSum)
    const float hi = add_rn(shift, d), bv = sub_rn(hi, shift);
    const float lo = add_rn(sub_rn(shift, sub_rn(hi, bv)), sub_rn(d, bv));
    float s2 = 0.0f;
    for_row<kVec>(x, C, [&](int64_t, F8 v) {
      for (int k = 0; k < kN; k++) {
        const float dev = sub_rn(sub_rn(v.v[k], hi), lo);
        s2 += dev * dev;
      }
    });
    const float var = block_sum(s2, sh) * inv_c;
    const float rs = 1.0f / sqrt_rn(var + eps);
    if (threadIdx.x == 0) {
      mean[row] = hi;
      rstd[row] = rs;
    }
    S* y = out + row * C;
    for_row<kVec>(x, C, [&](int64_t c, F8 v) {
      const F8 wv = get_params<kVec>(w, c), bias = get_params<kVec>(b, c);
      for (int k = 0; k < kN; k++) v.v[k] = sub_rn(sub_rn(v.v[k], hi), lo) * rs * wv.v[k] + bias.v[k];
      put<kVec>(y, c, v);
    });
  }
}

// dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy w, plus residual and the old dx as asked.
template <bool kVec, class S>
__global__ void __launch_bounds__(kThreads) layernorm_backward_kernel(const S* dy, const S* x, const float* w,
                                                                       const float* mean, const float* rstd, int64_t N,
                                                                       int64_t C, S* dx, bool accumulate,
                                                                       const S* residual) {
  constexpr int kN = kVec ? 8 : 1;
  DITTY_SHARED(float, sh, [33]);
  const float inv_c = 1.0f / static_cast<float>(C);
  for (int64_t row = blockIdx.x; row < N; row += gridDim.x) {
    const S* dyr = dy + row * C;
    const S* xr = x + row * C;
    const float mu = mean[row], rs = rstd[row];
    float sg = 0.0f, sgx = 0.0f;
    for_row<kVec>(dyr, C, [&](int64_t c, F8 g) {
      F8 xv;
      if constexpr (kVec) {
        xv = load8(xr + c);
      } else {
        xv.v[0] = to_f32(xr[c]);
      }
      const F8 wv = get_params<kVec>(w, c);
      for (int k = 0; k < kN; k++) {
        const float gk = g.v[k] * wv.v[k];
        sg += gk;
        sgx += gk * ((xv.v[k] - mu) * rs);
      }
    });
    const float mg = block_sum(sg, sh) * inv_c;
    const float mgx = block_sum(sgx, sh) * inv_c;
    S* dxr = dx + row * C;
    const S* rr = residual ? residual + row * C : nullptr;
    for_row<kVec>(dyr, C, [&](int64_t c, F8 g) {
      F8 xv, res{}, old{};
      if constexpr (kVec) {
        xv = load8(xr + c);
        if (rr) res = load8(rr + c);
        if (accumulate) old = load8(dxr + c);
      } else {
        xv.v[0] = to_f32(xr[c]);
        if (rr) res.v[0] = to_f32(rr[c]);
        if (accumulate) old.v[0] = to_f32(dxr[c]);
      }
      const F8 wv = get_params<kVec>(w, c);
      F8 o;
      for (int k = 0; k < kN; k++) {
        const float gk = g.v[k] * wv.v[k];
        const float xh = (xv.v[k] - mu) * rs;
        float t = ((gk - mg) - xh * mgx) * rs;
        if (rr) t += res.v[k];
        if (accumulate) t += old.v[k];
        o.v[k] = t;
      }
      put<kVec>(dxr, c, o);
    });
  }
}

template <class S>
void layernorm_fwd(const S* a, const S* r, S* sum, const float* w, const float* b, int64_t N, int64_t C, float eps,
                   S* out, float* mean, float* rstd, cudaStream_t stream) {
  if (N <= 0 || C <= 0) return;
  const bool vec = C % 8 == 0 && aligned16(a) && aligned16(r) && aligned16(sum) && aligned16(w) && aligned16(b) &&
                   aligned16(out);
  const dim3 grid(static_cast<unsigned>(std::min<int64_t>(N, kMaxBlocks)));
  const dim3 block(row_threads(vec ? C / 8 : C));
  if (vec) {
    launch(layernorm_forward_kernel<true, S>, grid, block, 0, stream, a, r, sum, w, b, N, C, eps, out, mean, rstd);
  } else {
    launch(layernorm_forward_kernel<false, S>, grid, block, 0, stream, a, r, sum, w, b, N, C, eps, out, mean, rstd);
  }
}

template <class S>
void layernorm_bwd(const S* dy, const S* x, const float* w, const float* mean, const float* rstd, int64_t N, int64_t C,
                   S* dx, bool accumulate, const S* residual, cudaStream_t stream) {
  if (N <= 0 || C <= 0) return;
  const bool vec =
      C % 8 == 0 && aligned16(dy) && aligned16(x) && aligned16(w) && aligned16(dx) && aligned16(residual);
  const dim3 grid(static_cast<unsigned>(std::min<int64_t>(N, kMaxBlocks)));
  const dim3 block(row_threads(vec ? C / 8 : C));
  if (vec) {
    launch(layernorm_backward_kernel<true, S>, grid, block, 0, stream, dy, x, w, mean, rstd, N, C, dx, accumulate,
           residual);
  } else {
    launch(layernorm_backward_kernel<false, S>, grid, block, 0, stream, dy, x, w, mean, rstd, N, C, dx, accumulate,
           residual);
  }
}

}  // namespace

void embedding_forward(const int32_t* ids, int64_t n, const float* table, int64_t C, float* out, cudaStream_t stream) {
  embedding(ids, n, table, C, out, stream);
}
void embedding_forward(const int32_t* ids, int64_t n, const __nv_bfloat16* table, int64_t C, __nv_bfloat16* out,
                       cudaStream_t stream) {
  embedding(ids, n, table, C, out, stream);
}

void layernorm_forward(const float* x, const float* w, const float* b, int64_t N, int64_t C, float eps, float* out,
                       float* mean, float* rstd, cudaStream_t stream) {
  layernorm_fwd<float>(x, nullptr, nullptr, w, b, N, C, eps, out, mean, rstd, stream);
}
void layernorm_forward(const __nv_bfloat16* x, const float* w, const float* b, int64_t N, int64_t C, float eps,
                       __nv_bfloat16* out, float* mean, float* rstd, cudaStream_t stream) {
  layernorm_fwd<__nv_bfloat16>(x, nullptr, nullptr, w, b, N, C, eps, out, mean, rstd, stream);
}
void residual_layernorm_forward(const float* a, const float* r, float* sum, const float* w, const float* b, int64_t N,
                                int64_t C, float eps, float* out, float* mean, float* rstd, cudaStream_t stream) {
  layernorm_fwd<float>(a, r, sum, w, b, N, C, eps, out, mean, rstd, stream);
}
void residual_layernorm_forward(const __nv_bfloat16* a, const __nv_bfloat16* r, __nv_bfloat16* sum, const float* w,
                                const float* b, int64_t N, int64_t C, float eps, __nv_bfloat16* out, float* mean,
                                float* rstd, cudaStream_t stream) {
  layernorm_fwd<__nv_bfloat16>(a, r, sum, w, b, N, C, eps, out, mean, rstd, stream);
}
void layernorm_backward(const float* dy, const float* x, const float* w, const float* mean, const float* rstd,
                        int64_t N, int64_t C, float* dx, bool accumulate, const float* residual, cudaStream_t stream) {
  layernorm_bwd(dy, x, w, mean, rstd, N, C, dx, accumulate, residual, stream);
}
void layernorm_backward(const __nv_bfloat16* dy, const __nv_bfloat16* x, const float* w, const float* mean,
                        const float* rstd, int64_t N, int64_t C, __nv_bfloat16* dx, bool accumulate,
                        const __nv_bfloat16* residual, cudaStream_t stream) {
  layernorm_bwd(dy, x, w, mean, rstd, N, C, dx, accumulate, residual, stream);
}

void add(const float* a, const float* b, float* out, int64_t n, cudaStream_t stream) {
  map(a, b, out, n, AddOp{}, stream);
}
void add(const __nv_bfloat16* a, const __nv_bfloat16* b, __nv_bfloat16* out, int64_t n, cudaStream_t stream) {
  map(a, b, out, n, AddOp{}, stream);
}
void add_inplace(float* y, const float* x, int64_t n, cudaStream_t stream) { map(y, x, y, n, AddOp{}, stream); }
void add_inplace(__nv_bfloat16* y, const __nv_bfloat16* x, int64_t n, cudaStream_t stream) {
  map(y, x, y, n, AddOp{}, stream);
}
void scale_inplace(float* x, int64_t n, float s, cudaStream_t stream) {
  map(x, static_cast<const float*>(nullptr), x, n, ScaleOp{s}, stream);
}
void scale_inplace(__nv_bfloat16* x, int64_t n, float s, cudaStream_t stream) {
  map(x, static_cast<const __nv_bfloat16*>(nullptr), x, n, ScaleOp{s}, stream);
}
void f32_to_bf16(const float* x, __nv_bfloat16* out, int64_t n, cudaStream_t stream) {
  map(x, static_cast<const float*>(nullptr), out, n, CopyOp{}, stream);
}
void bf16_to_f32(const __nv_bfloat16* x, float* out, int64_t n, cudaStream_t stream) {
  map(x, static_cast<const __nv_bfloat16*>(nullptr), out, n, CopyOp{}, stream);
}

}  // namespace ditty::cuda
