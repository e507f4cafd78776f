// Causal attention forward and backward (ditty/cuda/neox.h), flash-style in fp32: score tiles live
// in registers and shared memory only; backward recomputes probabilities from the saved lse.
//
// Thread layout in every kernel: tx = tid % 8, ty = tid / 8. A thread owns tile rows ty*RPT + i
// (i < RPT); of a score tile it owns the columns tx + 8 j, so the 8 lanes sharing a row are adjacent
// and a row reduction is three xor-shuffles; of an output tile (P V, dS K, ...) the columns
// 32 jj + 4 tx + e (e < 4), read as one float4. Shared tiles hold rows of DP + 4 floats: the dot
// products read 16 bytes per lane, and the 8 lanes of each quarter warp then hit distinct banks
// (row stride = 4 banks) or one address.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "ditty/cuda/neox.h"
#include "ditty/cuda/runtime.h"


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

__device__ __forceinline__ float4 ld4(const float* p) {  // p 16-byte aligned (shared memory)
#ifdef __CUDA_ARCH__
  return *reinterpret_cast<const float4*>(p);
#else
  float4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
#endif
}
__device__ __forceinline__ float dot4(float4 a, float4 b, float acc) {
  acc = fmaf(a.x, b.x, acc);
  acc = fmaf(a.y, b.y, acc);
  acc = fmaf(a.z, b.z, acc);
  return fmaf(a.w, b.w, acc);
}
__device__ __forceinline__ float part(float4 v, int e) { return e == 0 ? v.x : e == 1 ? v.y : e == 2 ? v.z : v.w; }
// acc[0..3] += s * v
__device__ __forceinline__ void axpy4(float s, float4 v, float* acc) {
  acc[0] = fmaf(s, v.x, acc[0]);
  acc[1] = fmaf(s, v.y, acc[1]);
  acc[2] = fmaf(s, v.z, acc[2]);
  acc[3] = fmaf(s, v.w, acc[3]);
}
__device__ __forceinline__ int round4(int n) { return (n + 3) / 4 * 4; }

// Rows [0, n) of a row-major matrix (row stride `stride`, d columns) into dst [R][DP + 4]; rows from
// n and columns from d (up to DP + 4) are zero.
template <int R, int DP, class S>
__device__ __forceinline__ void load_tile(float* dst, const S* src, int64_t stride, int n, int d) {
  constexpr int P = DP + 4;
  for (int e = threadIdx.x; e < R * P; e += blockDim.x) {
    const int r = e / P, c = e % P;
    dst[e] = r < n && c < d ? ld(src, r * stride + c) : 0.0f;
  }
}

// Scores of rows a_r (RPT, at stride P from a) against rows b_j = b + (tx + 8 j) P over c < d4.
template <int RPT, int NJ, int P>
__device__ __forceinline__ void dot_tile(const float* a, const float* b, int tx, int d4, float (&s)[RPT][NJ]) {
  for (int c = 0; c < d4; c += 4) {
    float4 av[RPT], bv[NJ];
    DITTY_UNROLL
    for (int i = 0; i < RPT; i++) av[i] = ld4(a + i * P + c);
    DITTY_UNROLL
    for (int j = 0; j < NJ; j++) bv[j] = ld4(b + (tx + 8 * j) * P + c);
    DITTY_UNROLL
    for (int i = 0; i < RPT; i++)
      DITTY_UNROLL
      for (int j = 0; j < NJ; j++) s[i][j] = dot4(av[i], bv[j], s[i][j]);
  }
}

// acc[i][32 jj + 4 tx + e] += sum over c < n4 of w[i][c] m[c][32 jj + 4 tx + e]: w rows at stride PW
// from w, m rows at stride P.
template <int RPT, int NC, int PW, int P>
__device__ __forceinline__ void product_tile(const float* w, const float* m, int tx, int n4, float (&acc)[RPT][NC]) {
  for (int c = 0; c < n4; c += 4) {
    float4 wv[RPT];
    DITTY_UNROLL
    for (int i = 0; i < RPT; i++) wv[i] = ld4(w + i * PW + c);
    DITTY_UNROLL
    for (int e = 0; e < 4; e++) {
      float4 mv[NC / 4];
      DITTY_UNROLL
      for (int jj = 0; jj < NC / 4; jj++) mv[jj] = ld4(m + (c + e) * P + 32 * jj + 4 * tx);
      DITTY_UNROLL
      for (int i = 0; i < RPT; i++)
        DITTY_UNROLL
        for (int jj = 0; jj < NC / 4; jj++) axpy4(part(wv[i], e), mv[jj], &acc[i][4 * jj]);
    }
  }
}

// Row `row` of an output tile: columns 32 jj + 4 tx + e below d, times `mul`, to dst + column.
template <int NC, class S>
__device__ __forceinline__ void store_row(S* dst, const float (&acc)[NC], int tx, int d, float mul, bool divide) {
  DITTY_UNROLL
  for (int jj = 0; jj < NC / 4; jj++) {
    DITTY_UNROLL
    for (int e = 0; e < 4; e++) {
      const int col = 32 * jj + 4 * tx + e;
      if (col < d) st(dst, col, divide ? acc[4 * jj + e] / mul : acc[4 * jj + e] * mul);
    }
  }
}

template <int BQ, int BK, int DP>
constexpr size_t forward_shared() {
  return sizeof(float) * ((BQ + 2 * BK) * (DP + 4) + BQ * (BK + 4));
}

// Queries [t0, t0 + BQ) of head bh against keys [0, past + t0 + BQ) streamed in tiles of BK, with
// the online softmax (running max m, running sum l per row).
template <class S, int DP, int BQ, int BK, int RPT>
__global__ void __launch_bounds__(BQ / RPT * 8) attention_forward_kernel(const S* q, const S* k, const S* v, int64_t H,
                                                                          int64_t T, int64_t Skeys, int d, float scale,
                                                                          S* out, float* lse) {
  constexpr int P = DP + 4, PB = BK + 4, NJ = BK / 8, NC = DP / 8;
  DITTY_DYNAMIC_SHARED(float, smem);
  float* Qs = smem;
  float* Ks = Qs + BQ * P;
  float* Vs = Ks + BK * P;
  float* Ps = Vs + BK * P;  // [BQ][BK + 4]
  const int tx = threadIdx.x % 8, ty = threadIdx.x / 8, d4 = round4(d);
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
    dot_tile<RPT, NJ, P>(Qs + ty * RPT * P, Ks, tx, d4, s);
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
        const float p = expf(s[i][j] - mn);  // 0 for masked keys (and keys past the tile's n)
        Ps[(ty * RPT + i) * PB + tx + 8 * j] = p;
        sum += p;
      }
      l[i] = fmaf(l[i], corr, row_sum(sum));
      m[i] = mn;
      DITTY_UNROLL
      for (int j = 0; j < NC; j++) acc[i][j] *= corr;
    }
    __syncthreads();
    product_tile<RPT, NC, PB, P>(Ps + ty * RPT * PB, Vs, tx, round4(n), acc);
  }
  const int64_t b = bh / H, h = bh % H;
  DITTY_UNROLL
  for (int i = 0; i < RPT; i++) {
    const int row = ty * RPT + i;
    if (row >= rows) continue;
    store_row(out + ((b * T + t0 + row) * H + h) * d, acc[i], tx, d, l[i], true);
    if (lse && tx == 0) lse[bh * T + t0 + row] = m[i] + logf(l[i]);
  }
}

template <int BQ, int BK, int DP>
constexpr size_t dq_shared() {
  return sizeof(float) * ((2 * BQ + 2 * BK) * (DP + 4) + BQ * (BK + 4));
}

// dQ of queries [t0, t0 + BQ) = scale * sum over keys j <= t of dS K, dS = P (dO.v_j - D),
// P = exp(q.k_j scale - lse). Also writes D = rowsum(dO * O) of these rows for the dk, dv pass.
template <class S, int DP, int BQ, int BK, int RPT>
__global__ void __launch_bounds__(BQ / RPT * 8) attention_dq_kernel(const S* dout, const S* q, const S* k, const S* v,
                                                                     const S* out, const float* lse, int64_t H,
                                                                     int64_t T, int d, float scale, S* dq,
                                                                     float* Dbuf) {
  constexpr int P = DP + 4, PB = BK + 4, NJ = BK / 8, NC = DP / 8;
  DITTY_DYNAMIC_SHARED(float, smem);
  float* Qs = smem;
  float* dOs = Qs + BQ * P;
  float* Ks = dOs + BQ * P;
  float* Vs = Ks + BK * P;
  float* dSs = Vs + BK * P;  // [BQ][BK + 4]
  const int tx = threadIdx.x % 8, ty = threadIdx.x / 8, d4 = round4(d);
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
    float sum = 0.0f;
    if (row < rows) {
      for (int c = tx; c < d; c += 8) sum = fmaf(dOs[row * P + c], ld(out, o0 + row * ldo + c), sum);
    }
    D[i] = row_sum(sum);
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
    dot_tile<RPT, NJ, P>(Qs + ty * RPT * P, Ks, tx, d4, s);
    dot_tile<RPT, NJ, P>(dOs + ty * RPT * P, Vs, tx, d4, dp);
    DITTY_UNROLL
    for (int i = 0; i < RPT; i++) {
      const int64_t t = t0 + ty * RPT + i;
      DITTY_UNROLL
      for (int j = 0; j < NJ; j++) {
        const float p = c0 + tx + 8 * j <= t ? expf(s[i][j] * scale - L[i]) : 0.0f;
        dSs[(ty * RPT + i) * PB + tx + 8 * j] = p * (dp[i][j] - D[i]);
      }
    }
    __syncthreads();
    product_tile<RPT, NC, PB, P>(dSs + ty * RPT * PB, Ks, tx, round4(n), acc);
  }
  DITTY_UNROLL
  for (int i = 0; i < RPT; i++) {
    const int row = ty * RPT + i;
    if (row < rows) store_row(dq + (bh * T + t0 + row) * d, acc[i], tx, d, scale, false);
  }
}

template <int BK, int BQ, int DP>
constexpr size_t dkdv_shared() {
  return sizeof(float) * ((2 * BK + 2 * BQ) * (DP + 4) + 2 * BK * (BQ + 4) + 2 * BQ);
}

// dK, dV of keys [c0, c0 + BK) from the queries t >= key in tiles of BQ, in increasing t:
// dV = sum_t P dO_t, dK = scale sum_t dS Q_t.
template <class S, int DP, int BK, int BQ, int RPT>
__global__ void __launch_bounds__(BK / RPT * 8) attention_dkdv_kernel(const S* dout, const S* q, const S* k, const S* v,
                                                                       const float* lse, const float* Dbuf, int64_t H,
                                                                       int64_t T, int d, float scale, S* dk, S* dv) {
  constexpr int P = DP + 4, PB = BQ + 4, NJ = BQ / 8, NC = DP / 8;
  DITTY_DYNAMIC_SHARED(float, smem);
  float* Ks = smem;
  float* Vs = Ks + BK * P;
  float* Qs = Vs + BK * P;
  float* dOs = Qs + BQ * P;
  float* Ps = dOs + BQ * P;    // [BK][BQ + 4]
  float* dSs = Ps + BK * PB;   // [BK][BQ + 4]
  float* Ls = dSs + BK * PB;   // [BQ]
  float* Ds = Ls + BQ;         // [BQ]
  const int tx = threadIdx.x % 8, ty = threadIdx.x / 8, d4 = round4(d);
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
    dot_tile<RPT, NJ, P>(Ks + ty * RPT * P, Qs, tx, d4, s);
    dot_tile<RPT, NJ, P>(Vs + ty * RPT * P, dOs, tx, d4, dp);
    DITTY_UNROLL
    for (int i = 0; i < RPT; i++) {
      const int64_t key = c0 + ty * RPT + i;
      DITTY_UNROLL
      for (int j = 0; j < NJ; j++) {
        const int r = tx + 8 * j;
        const float p = key <= t0 + r && r < rows ? expf(s[i][j] * scale - Ls[r]) : 0.0f;
        Ps[(ty * RPT + i) * PB + r] = p;
        dSs[(ty * RPT + i) * PB + r] = p * (dp[i][j] - Ds[r]);
      }
    }
    __syncthreads();
    product_tile<RPT, NC, PB, P>(Ps + ty * RPT * PB, dOs, tx, round4(rows), av);
    product_tile<RPT, NC, PB, P>(dSs + ty * RPT * PB, Qs, tx, round4(rows), ak);
  }
  DITTY_UNROLL
  for (int i = 0; i < RPT; i++) {
    const int row = ty * RPT + i;
    if (row >= keys) continue;
    store_row(dk + (bh * T + c0 + row) * d, ak[i], tx, d, scale, false);
    store_row(dv + (bh * T + c0 + row) * d, av[i], tx, d, 1.0f, false);
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

// (batch, head) pairs are the grid's y dimension
void check_heads(int64_t B, int64_t H) {
  if (B * H > 65535) throw std::invalid_argument("attention: B*H must be at most 65535, got " + std::to_string(B * H));
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
  check_heads(B, H);
  if (B * H * T == 0) return;
  if (dp == 32) return forward_with<S, 32, 64, 64, 4>(q, k, v, B, H, T, Skeys, d, out, lse, stream);
  if (dp == 64) return forward_with<S, 64, 64, 64, 4>(q, k, v, B, H, T, Skeys, d, out, lse, stream);
  forward_with<S, 128, 64, 32, 4>(q, k, v, B, H, T, Skeys, d, out, lse, stream);
}

template <class S>
void backward_impl(const S* dout, const S* q, const S* k, const S* v, const S* out, const float* lse, int64_t B,
                   int64_t H, int64_t T, int64_t d, S* dq, S* dk, S* dv, float* scratch, cudaStream_t stream) {
  const int dp = padded_dim(d);
  check_heads(B, H);
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
