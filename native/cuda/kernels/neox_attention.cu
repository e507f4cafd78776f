// Causal attention forward and backward (ditty/cuda/neox.h), flash-style in fp32: score tiles live
// in registers and shared memory only; backward recomputes probabilities from the saved lse.
//
// Thread layout in every kernel: tx = tid % 8, ty = tid / 8. A thread owns tile rows ty*RPT + i
// (i < RPT) and the columns tx + 8 j, so the 8 lanes sharing a row are adjacent and a row reduction
// is three xor-shuffles. Shared tiles hold rows of DP + 1 floats: the RPT-row groups of a warp and
// the 8 column lanes then fall in distinct banks.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "ditty/cuda/neox.h"
#include "ditty/cuda/runtime.h"

// #pragma unroll is nvcc's; g++ (the emulated build) would warn about it
#ifndef DITTY_UNROLL
#if defined(__CUDACC__)
#define DITTY_UNROLL _Pragma("unroll")
#else
#define DITTY_UNROLL
#endif
#endif

namespace ditty::cuda {
namespace {

__device__ __forceinline__ float ld(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float ld(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void st(float* p, int64_t i, float x) { p[i] = x; }
__device__ __forceinline__ void st(__nv_bfloat16* p, int64_t i, float x) { p[i] = __float2bfloat16(x); }

__device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

__device__ __forceinline__ float row_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 4));
}
__device__ __forceinline__ float row_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  x += __shfl_xor_sync(0xffffffffu, x, 2);
  return x + __shfl_xor_sync(0xffffffffu, x, 4);
}

// Rows [0, n) of a row-major matrix (row stride `stride`, d columns) into dst [R][DP + 1]; rows from
// n and columns from d are zero.
template <int R, int DP, class S>
__device__ __forceinline__ void load_tile(float* dst, const S* src, int64_t stride, int n, int d) {
  for (int e = threadIdx.x; e < R * DP; e += blockDim.x) {
    const int r = e / DP, c = e % DP;
    dst[r * (DP + 1) + c] = r < n && c < d ? ld(src, r * stride + c) : 0.0f;
  }
}

template <int BQ, int BK, int DP>
constexpr size_t forward_shared() {
  return sizeof(float) * ((BQ + 2 * BK) * (DP + 1) + BQ * (BK + 1));
}

// Queries [t0, t0 + BQ) of head bh against keys [0, past + t0 + BQ) streamed in tiles of BK, with
// the online softmax (running max m, running sum l per row).
template <class S, int DP, int BQ, int BK, int RPT>
__global__ void __launch_bounds__(BQ / RPT * 8) attention_forward_kernel(const S* q, const S* k, const S* v, int64_t H,
                                                                          int64_t T, int64_t Skeys, int d, float scale,
                                                                          S* out, float* lse) {
  constexpr int P = DP + 1, NJ = BK / 8, NC = DP / 8;
  DITTY_DYNAMIC_SHARED(float, smem);
  float* Qs = smem;
  float* Ks = Qs + BQ * P;
  float* Vs = Ks + BK * P;
  float* Ps = Vs + BK * P;  // [BQ][BK + 1]
  const int tx = threadIdx.x % 8, ty = threadIdx.x / 8;
  const int64_t bh = blockIdx.y, t0 = static_cast<int64_t>(gridDim.x - 1 - blockIdx.x) * BQ;  // longest rows first
  const int rows = static_cast<int>(min64(BQ, T - t0));
  const int64_t past = Skeys - T, kend = past + t0 + rows;
  const S* K = k + bh * Skeys * d;
  const S* V = v + bh * Skeys * d;
  load_tile<BQ, DP>(Qs, q + (bh * T + t0) * d, d, rows, d);

  float m[RPT], l[RPT], acc[RPT][NC];
DITTY_UNROLL
  for (int i = 0; i < RPT; i++) {
    m[i] = -INFINITY;
    l[i] = 0.0f;
DITTY_UNROLL
    for (int j = 0; j < NC; j++) acc[i][j] = 0.0f;
  }
  for (int64_t c0 = 0; c0 < kend; c0 += BK) {
    const int n = static_cast<int>(min64(BK, kend - c0));
    __syncthreads();  // the previous tile's K, V, P are no longer read
    load_tile<BK, DP>(Ks, K + c0 * d, d, n, d);
    load_tile<BK, DP>(Vs, V + c0 * d, d, n, d);
    __syncthreads();
    float s[RPT][NJ];
DITTY_UNROLL
    for (int i = 0; i < RPT; i++)
DITTY_UNROLL
      for (int j = 0; j < NJ; j++) s[i][j] = 0.0f;
    for (int c = 0; c < d; c++) {
      float a[RPT], b[NJ];
DITTY_UNROLL
      for (int i = 0; i < RPT; i++) a[i] = Qs[(ty * RPT + i) * P + c];
DITTY_UNROLL
      for (int j = 0; j < NJ; j++) b[j] = Ks[(tx + 8 * j) * P + c];
DITTY_UNROLL
      for (int i = 0; i < RPT; i++)
DITTY_UNROLL
        for (int j = 0; j < NJ; j++) s[i][j] = fmaf(a[i], b[j], s[i][j]);
    }
DITTY_UNROLL
    for (int i = 0; i < RPT; i++) {
      const int64_t pos = past + t0 + ty * RPT + i;
      float mx = -INFINITY;
DITTY_UNROLL
      for (int j = 0; j < NJ; j++) {
        s[i][j] = c0 + tx + 8 * j <= pos ? s[i][j] * scale : -INFINITY;
        mx = fmaxf(mx, s[i][j]);
      }
      // key 0 is in the first tile and visible to every row: mn is finite from then on
      const float mn = fmaxf(m[i], row_max(mx)), corr = expf(m[i] - mn);
      float sum = 0.0f;
DITTY_UNROLL
      for (int j = 0; j < NJ; j++) {
        const float p = expf(s[i][j] - mn);
        Ps[(ty * RPT + i) * (BK + 1) + tx + 8 * j] = p;
        sum += p;
      }
      l[i] = fmaf(l[i], corr, row_sum(sum));
      m[i] = mn;
DITTY_UNROLL
      for (int j = 0; j < NC; j++) acc[i][j] *= corr;
    }
    __syncthreads();
    for (int c = 0; c < n; c++) {
      float p[RPT], vv[NC];
DITTY_UNROLL
      for (int i = 0; i < RPT; i++) p[i] = Ps[(ty * RPT + i) * (BK + 1) + c];
DITTY_UNROLL
      for (int j = 0; j < NC; j++) vv[j] = Vs[c * P + tx + 8 * j];
DITTY_UNROLL
      for (int i = 0; i < RPT; i++)
DITTY_UNROLL
        for (int j = 0; j < NC; j++) acc[i][j] = fmaf(p[i], vv[j], acc[i][j]);
    }
  }
  const int64_t b = bh / H, h = bh % H;
DITTY_UNROLL
  for (int i = 0; i < RPT; i++) {
    const int row = ty * RPT + i;
    if (row >= rows) continue;
    const int64_t o = ((b * T + t0 + row) * H + h) * d;
DITTY_UNROLL
    for (int j = 0; j < NC; j++) {
      if (tx + 8 * j < d) st(out, o + tx + 8 * j, acc[i][j] / l[i]);
    }
    if (lse && tx == 0) lse[bh * T + t0 + row] = m[i] + logf(l[i]);
  }
}

template <int BQ, int BK, int DP>
constexpr size_t dq_shared() {
  return sizeof(float) * ((2 * BQ + 2 * BK) * (DP + 1) + BQ * (BK + 1));
}

// dQ of queries [t0, t0 + BQ) = scale * sum over keys j <= t of dS K, dS = P (dO.v_j - D),
// P = exp(q.k_j scale - lse). Also writes D = rowsum(dO * O) of these rows for the dk, dv pass.
template <class S, int DP, int BQ, int BK, int RPT>
__global__ void __launch_bounds__(BQ / RPT * 8) attention_dq_kernel(const S* dout, const S* q, const S* k, const S* v,
                                                                     const S* out, const float* lse, int64_t H,
                                                                     int64_t T, int d, float scale, S* dq,
                                                                     float* Dbuf) {
  constexpr int P = DP + 1, NJ = BK / 8, NC = DP / 8;
  DITTY_DYNAMIC_SHARED(float, smem);
  float* Qs = smem;
  float* dOs = Qs + BQ * P;
  float* Ks = dOs + BQ * P;
  float* Vs = Ks + BK * P;
  float* dSs = Vs + BK * P;  // [BQ][BK + 1]
  const int tx = threadIdx.x % 8, ty = threadIdx.x / 8;
  const int64_t bh = blockIdx.y, b = bh / H, h = bh % H;
  const int64_t t0 = static_cast<int64_t>(gridDim.x - 1 - blockIdx.x) * BQ;
  const int rows = static_cast<int>(min64(BQ, T - t0));
  const int64_t ldo = H * d, o0 = (b * T + t0) * ldo + h * d;
  load_tile<BQ, DP>(Qs, q + (bh * T + t0) * d, d, rows, d);
  load_tile<BQ, DP>(dOs, dout + o0, ldo, rows, d);
  __syncthreads();

  float L[RPT], D[RPT], acc[RPT][NC];
DITTY_UNROLL
  for (int i = 0; i < RPT; i++) {
    const int row = ty * RPT + i;
    float part = 0.0f;
    if (row < rows) {
      for (int c = tx; c < d; c += 8) part = fmaf(dOs[row * P + c], ld(out, o0 + row * ldo + c), part);
    }
    D[i] = row_sum(part);
    L[i] = row < rows ? lse[bh * T + t0 + row] : 0.0f;
    if (row < rows && tx == 0) Dbuf[bh * T + t0 + row] = D[i];
DITTY_UNROLL
    for (int j = 0; j < NC; j++) acc[i][j] = 0.0f;
  }
  const S* K = k + bh * T * d;
  const S* V = v + bh * T * d;
  const int64_t kend = t0 + rows;
  for (int64_t c0 = 0; c0 < kend; c0 += BK) {
    const int n = static_cast<int>(min64(BK, kend - c0));
    __syncthreads();
    load_tile<BK, DP>(Ks, K + c0 * d, d, n, d);
    load_tile<BK, DP>(Vs, V + c0 * d, d, n, d);
    __syncthreads();
    float s[RPT][NJ], dp[RPT][NJ];
DITTY_UNROLL
    for (int i = 0; i < RPT; i++)
DITTY_UNROLL
      for (int j = 0; j < NJ; j++) s[i][j] = dp[i][j] = 0.0f;
    for (int c = 0; c < d; c++) {
      float a[RPT], g[RPT], kb[NJ], vb[NJ];
DITTY_UNROLL
      for (int i = 0; i < RPT; i++) {
        a[i] = Qs[(ty * RPT + i) * P + c];
        g[i] = dOs[(ty * RPT + i) * P + c];
      }
DITTY_UNROLL
      for (int j = 0; j < NJ; j++) {
        kb[j] = Ks[(tx + 8 * j) * P + c];
        vb[j] = Vs[(tx + 8 * j) * P + c];
      }
DITTY_UNROLL
      for (int i = 0; i < RPT; i++)
DITTY_UNROLL
        for (int j = 0; j < NJ; j++) {
          s[i][j] = fmaf(a[i], kb[j], s[i][j]);
          dp[i][j] = fmaf(g[i], vb[j], dp[i][j]);
        }
    }
DITTY_UNROLL
    for (int i = 0; i < RPT; i++) {
      const int64_t t = t0 + ty * RPT + i;
DITTY_UNROLL
      for (int j = 0; j < NJ; j++) {
        const float p = c0 + tx + 8 * j <= t ? expf(s[i][j] * scale - L[i]) : 0.0f;
        dSs[(ty * RPT + i) * (BK + 1) + tx + 8 * j] = p * (dp[i][j] - D[i]);
      }
    }
    __syncthreads();
    for (int c = 0; c < n; c++) {
      float ds[RPT], kv[NC];
DITTY_UNROLL
      for (int i = 0; i < RPT; i++) ds[i] = dSs[(ty * RPT + i) * (BK + 1) + c];
DITTY_UNROLL
      for (int j = 0; j < NC; j++) kv[j] = Ks[c * P + tx + 8 * j];
DITTY_UNROLL
      for (int i = 0; i < RPT; i++)
DITTY_UNROLL
        for (int j = 0; j < NC; j++) acc[i][j] = fmaf(ds[i], kv[j], acc[i][j]);
    }
  }
DITTY_UNROLL
  for (int i = 0; i < RPT; i++) {
    const int row = ty * RPT + i;
    if (row >= rows) continue;
DITTY_UNROLL
    for (int j = 0; j < NC; j++) {
      if (tx + 8 * j < d) st(dq, (bh * T + t0 + row) * d + tx + 8 * j, acc[i][j] * scale);
    }
  }
}

template <int BK, int BQ, int DP>
constexpr size_t dkdv_shared() {
  return sizeof(float) * ((2 * BK + 2 * BQ) * (DP + 1) + 2 * BK * (BQ + 1) + 2 * BQ);
}

// dK, dV of keys [c0, c0 + BK) from the queries t >= key in tiles of BQ, in increasing t:
// dV = sum_t P dO_t, dK = scale sum_t dS Q_t.
template <class S, int DP, int BK, int BQ, int RPT>
__global__ void __launch_bounds__(BK / RPT * 8) attention_dkdv_kernel(const S* dout, const S* q, const S* k, const S* v,
                                                                       const float* lse, const float* Dbuf, int64_t H,
                                                                       int64_t T, int d, float scale, S* dk, S* dv) {
  constexpr int P = DP + 1, NJ = BQ / 8, NC = DP / 8;
  DITTY_DYNAMIC_SHARED(float, smem);
  float* Ks = smem;
  float* Vs = Ks + BK * P;
  float* Qs = Vs + BK * P;
  float* dOs = Qs + BQ * P;
  float* Ps = dOs + BQ * P;          // [BK][BQ + 1]
  float* dSs = Ps + BK * (BQ + 1);   // [BK][BQ + 1]
  float* Ls = dSs + BK * (BQ + 1);   // [BQ]
  float* Ds = Ls + BQ;               // [BQ]
  const int tx = threadIdx.x % 8, ty = threadIdx.x / 8;
  const int64_t bh = blockIdx.y, b = bh / H, h = bh % H, ldo = H * d;
  const int64_t c0 = static_cast<int64_t>(blockIdx.x) * BK;  // the first key tiles see the most queries
  const int keys = static_cast<int>(min64(BK, T - c0));
  load_tile<BK, DP>(Ks, k + (bh * T + c0) * d, d, keys, d);
  load_tile<BK, DP>(Vs, v + (bh * T + c0) * d, d, keys, d);

  float ak[RPT][NC], av[RPT][NC];
DITTY_UNROLL
  for (int i = 0; i < RPT; i++)
DITTY_UNROLL
    for (int j = 0; j < NC; j++) ak[i][j] = av[i][j] = 0.0f;
  for (int64_t t0 = c0 / BQ * BQ; t0 < T; t0 += BQ) {
    const int rows = static_cast<int>(min64(BQ, T - t0));
    __syncthreads();
    load_tile<BQ, DP>(Qs, q + (bh * T + t0) * d, d, rows, d);
    load_tile<BQ, DP>(dOs, dout + (b * T + t0) * ldo + h * d, ldo, rows, d);
    for (int r = threadIdx.x; r < BQ; r += blockDim.x) {
      Ls[r] = r < rows ? lse[bh * T + t0 + r] : 0.0f;
      Ds[r] = r < rows ? Dbuf[bh * T + t0 + r] : 0.0f;
    }
    __syncthreads();
    float s[RPT][NJ], dp[RPT][NJ];
DITTY_UNROLL
    for (int i = 0; i < RPT; i++)
DITTY_UNROLL
      for (int j = 0; j < NJ; j++) s[i][j] = dp[i][j] = 0.0f;
    for (int c = 0; c < d; c++) {
      float kb[RPT], vb[RPT], a[NJ], g[NJ];
DITTY_UNROLL
      for (int i = 0; i < RPT; i++) {
        kb[i] = Ks[(ty * RPT + i) * P + c];
        vb[i] = Vs[(ty * RPT + i) * P + c];
      }
DITTY_UNROLL
      for (int j = 0; j < NJ; j++) {
        a[j] = Qs[(tx + 8 * j) * P + c];
        g[j] = dOs[(tx + 8 * j) * P + c];
      }
DITTY_UNROLL
      for (int i = 0; i < RPT; i++)
DITTY_UNROLL
        for (int j = 0; j < NJ; j++) {
          s[i][j] = fmaf(a[j], kb[i], s[i][j]);
          dp[i][j] = fmaf(g[j], vb[i], dp[i][j]);
        }
    }
DITTY_UNROLL
    for (int i = 0; i < RPT; i++) {
      const int64_t key = c0 + ty * RPT + i;
DITTY_UNROLL
      for (int j = 0; j < NJ; j++) {
        const int r = tx + 8 * j;
        const float p = key <= t0 + r && r < rows ? expf(s[i][j] * scale - Ls[r]) : 0.0f;
        Ps[(ty * RPT + i) * (BQ + 1) + r] = p;
        dSs[(ty * RPT + i) * (BQ + 1) + r] = p * (dp[i][j] - Ds[r]);
      }
    }
    __syncthreads();
    for (int r = 0; r < rows; r++) {
      float p[RPT], ds[RPT], g[NC], a[NC];
DITTY_UNROLL
      for (int i = 0; i < RPT; i++) {
        p[i] = Ps[(ty * RPT + i) * (BQ + 1) + r];
        ds[i] = dSs[(ty * RPT + i) * (BQ + 1) + r];
      }
DITTY_UNROLL
      for (int j = 0; j < NC; j++) {
        g[j] = dOs[r * P + tx + 8 * j];
        a[j] = Qs[r * P + tx + 8 * j];
      }
DITTY_UNROLL
      for (int i = 0; i < RPT; i++)
DITTY_UNROLL
        for (int j = 0; j < NC; j++) {
          av[i][j] = fmaf(p[i], g[j], av[i][j]);
          ak[i][j] = fmaf(ds[i], a[j], ak[i][j]);
        }
    }
  }
DITTY_UNROLL
  for (int i = 0; i < RPT; i++) {
    const int row = ty * RPT + i;
    if (row >= keys) continue;
    const int64_t o = (bh * T + c0 + row) * d;
DITTY_UNROLL
    for (int j = 0; j < NC; j++) {
      if (tx + 8 * j < d) {
        st(dk, o + tx + 8 * j, ak[i][j] * scale);
        st(dv, o + tx + 8 * j, av[i][j]);
      }
    }
  }
}

// Shared memory above the default 48 KiB must be asked for per kernel.
template <class Kernel>
void allow_shared(Kernel* kernel, size_t bytes) {
  if (bytes > 48 * 1024) {
    DITTY_CUDA_CHECK(cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          static_cast<int>(bytes)));
  }
}

unsigned tiles(int64_t n, int tile) { return static_cast<unsigned>((n + tile - 1) / tile); }

int padded_dim(int64_t d) {
  if (d < 1 || d > 128) throw std::invalid_argument("attention: head dim must be 1..128, got " + std::to_string(d));
  return d <= 32 ? 32 : d <= 64 ? 64 : 128;
}

float scale_of(int64_t d) { return static_cast<float>(1.0 / std::sqrt(static_cast<double>(d))); }

template <class S, int DP, int BQ, int BK, int RPT>
void forward_with(const S* q, const S* k, const S* v, int64_t B, int64_t H, int64_t T, int64_t Skeys, int64_t d, S* out,
                  float* lse, cudaStream_t stream) {
  constexpr size_t shared = forward_shared<BQ, BK, DP>();
  auto kernel = attention_forward_kernel<S, DP, BQ, BK, RPT>;
  allow_shared(kernel, shared);
  launch(kernel, dim3(tiles(T, BQ), static_cast<unsigned>(B * H)), BQ / RPT * 8, shared, stream, q, k, v, H, T, Skeys,
         static_cast<int>(d), scale_of(d), out, lse);
}

template <class S, int DP, int BQ, int BK, int RPT>
void dq_with(const S* dout, const S* q, const S* k, const S* v, const S* out, const float* lse, int64_t B, int64_t H,
             int64_t T, int64_t d, S* dq, float* Dbuf, cudaStream_t stream) {
  constexpr size_t shared = dq_shared<BQ, BK, DP>();
  auto kernel = attention_dq_kernel<S, DP, BQ, BK, RPT>;
  allow_shared(kernel, shared);
  launch(kernel, dim3(tiles(T, BQ), static_cast<unsigned>(B * H)), BQ / RPT * 8, shared, stream, dout, q, k, v, out,
         lse, H, T, static_cast<int>(d), scale_of(d), dq, Dbuf);
}

template <class S, int DP, int BK, int BQ, int RPT>
void dkdv_with(const S* dout, const S* q, const S* k, const S* v, const float* lse, const float* Dbuf, int64_t B,
               int64_t H, int64_t T, int64_t d, S* dk, S* dv, cudaStream_t stream) {
  constexpr size_t shared = dkdv_shared<BK, BQ, DP>();
  auto kernel = attention_dkdv_kernel<S, DP, BK, BQ, RPT>;
  allow_shared(kernel, shared);
  launch(kernel, dim3(tiles(T, BK), static_cast<unsigned>(B * H)), BK / RPT * 8, shared, stream, dout, q, k, v, lse,
         Dbuf, H, T, static_cast<int>(d), scale_of(d), dk, dv);
}

template <class S>
void forward_impl(const S* q, const S* k, const S* v, int64_t B, int64_t H, int64_t T, int64_t Skeys, int64_t d, S* out,
                  float* lse, cudaStream_t stream) {
  const int dp = padded_dim(d);
  if (Skeys < T) throw std::invalid_argument("attention: S must be at least T");
  if (B * H * T == 0) return;
  if (dp == 32) return forward_with<S, 32, 64, 64, 4>(q, k, v, B, H, T, Skeys, d, out, lse, stream);
  if (dp == 64) return forward_with<S, 64, 64, 64, 4>(q, k, v, B, H, T, Skeys, d, out, lse, stream);
  forward_with<S, 128, 64, 32, 4>(q, k, v, B, H, T, Skeys, d, out, lse, stream);
}

template <class S>
void backward_impl(const S* dout, const S* q, const S* k, const S* v, const S* out, const float* lse, int64_t B,
                   int64_t H, int64_t T, int64_t d, S* dq, S* dk, S* dv, float* scratch, cudaStream_t stream) {
  const int dp = padded_dim(d);
  if (B * H * T == 0) return;
  if (dp == 32) {
    dq_with<S, 32, 64, 64, 4>(dout, q, k, v, out, lse, B, H, T, d, dq, scratch, stream);
    return dkdv_with<S, 32, 64, 32, 4>(dout, q, k, v, lse, scratch, B, H, T, d, dk, dv, stream);
  }
  if (dp == 64) {
    dq_with<S, 64, 64, 64, 4>(dout, q, k, v, out, lse, B, H, T, d, dq, scratch, stream);
    return dkdv_with<S, 64, 64, 32, 4>(dout, q, k, v, lse, scratch, B, H, T, d, dk, dv, stream);
  }
  dq_with<S, 128, 32, 32, 2>(dout, q, k, v, out, lse, B, H, T, d, dq, scratch, stream);
  dkdv_with<S, 128, 32, 32, 2>(dout, q, k, v, lse, scratch, B, H, T, d, dk, dv, stream);
}

}  // namespace

void attention_forward(const float* q, const float* k, const float* v, int64_t B, int64_t H, int64_t T, int64_t S,
                       int64_t d, float* out, float* lse, cudaStream_t stream) {
  forward_impl(q, k, v, B, H, T, S, d, out, lse, stream);
}
void attention_forward(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, int64_t B, int64_t H,
                       int64_t T, int64_t S, int64_t d, __nv_bfloat16* out, float* lse, cudaStream_t stream) {
  forward_impl(q, k, v, B, H, T, S, d, out, lse, stream);
}
void attention_backward(const float* dout, const float* q, const float* k, const float* v, const float* out,
                        const float* lse, int64_t B, int64_t H, int64_t T, int64_t d, float* dq, float* dk, float* dv,
                        float* scratch, cudaStream_t stream) {
  backward_impl(dout, q, k, v, out, lse, B, H, T, d, dq, dk, dv, scratch, stream);
}
void attention_backward(const __nv_bfloat16* dout, const __nv_bfloat16* q, const __nv_bfloat16* k,
                        const __nv_bfloat16* v, const __nv_bfloat16* out, const float* lse, int64_t B, int64_t H,
                        int64_t T, int64_t d, __nv_bfloat16* dq, __nv_bfloat16* dk, __nv_bfloat16* dv, float* scratch,
                        cudaStream_t stream) {
  backward_impl(dout, q, k, v, out, lse, B, H, T, d, dq, dk, dv, scratch, stream);
}

}  // namespace ditty::cuda
