// Device helpers shared by the kernel files: launch shapes and grid-stride indices, storage
// conversions, 16-byte loads and stores, operations rounded one by one, and fixed-order reductions.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "ditty/cuda/runtime.h"

namespace ditty::cuda::kdetail {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 8192;

inline unsigned blocks_for(int64_t items, int64_t per_block = kThreads) {
  return static_cast<unsigned>(std::clamp<int64_t>((items + per_block - 1) / per_block, 1, kMaxBlocks));
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

__device__ __forceinline__ int64_t global_thread() { return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t global_threads() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
template <class T>
__device__ __forceinline__ T from_f32(float x);
template <>
__device__ __forceinline__ float from_f32<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}
// element i of a float or bf16 array as float, and a float stored back in the array's type
template <class T>
__device__ __forceinline__ float ld(const T* p, int64_t i) { return to_f32(p[i]); }
template <class T>
__device__ __forceinline__ void st(T* p, int64_t i, float x) { p[i] = from_f32<T>(x); }

// Single float/double operations, each rounded once (nvcc would otherwise contract a*b+c into an
// FMA, which the CPU twins do not do). The emulated build compiles as ISO C++ (no contraction).
// The bit-exact kernels also need denormals kept: no -ftz=true / --use_fast_math for these files.
#ifdef __CUDA_ARCH__
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ float sub_rn(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ float div_rn(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ float sqrt_rn(float a) { return __fsqrt_rn(a); }
__device__ __forceinline__ double dadd_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ double dmul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ double ddiv_rn(double a, double b) { return __ddiv_rn(a, b); }
__device__ __forceinline__ double dsqrt_rn(double a) { return __dsqrt_rn(a); }
#else
__device__ __forceinline__ float mul_rn(float a, float b) { return a * b; }
__device__ __forceinline__ float add_rn(float a, float b) { return a + b; }
__device__ __forceinline__ float sub_rn(float a, float b) { return a - b; }
__device__ __forceinline__ float div_rn(float a, float b) { return a / b; }
__device__ __forceinline__ float sqrt_rn(float a) { return std::sqrt(a); }
__device__ __forceinline__ double dadd_rn(double a, double b) { return a + b; }
__device__ __forceinline__ double dmul_rn(double a, double b) { return a * b; }
__device__ __forceinline__ double ddiv_rn(double a, double b) { return a / b; }
__device__ __forceinline__ double dsqrt_rn(double a) { return std::sqrt(a); }
#endif

// 16-byte global accesses. On the GPU they are PTX v4 accesses (a memcpy is lowered to byte
// accesses by nvcc, and casting T* to uint4* would break type aliasing); volatile with a memory
// clobber so that they stay ordered with the thread's other accesses to the same addresses.
struct Raw16 {
  uint32_t w[4];
};
__device__ __forceinline__ Raw16 load16(const void* p) {
  Raw16 r;
#ifdef __CUDA_ARCH__
  asm volatile("ld.global.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(r.w[0]), "=r"(r.w[1]), "=r"(r.w[2]), "=r"(r.w[3])
               : "l"(p)
               : "memory");
#else
  std::memcpy(&r, p, sizeof r);
#endif
  return r;
}
__device__ __forceinline__ void store16(void* p, const Raw16& r) {
#ifdef __CUDA_ARCH__
  asm volatile("st.global.v4.u32 [%0], {%1, %2, %3, %4};" ::"l"(p), "r"(r.w[0]), "r"(r.w[1]), "r"(r.w[2]),
               "r"(r.w[3])
               : "memory");
#else
  std::memcpy(p, &r, sizeof r);
#endif
}

// Eight consecutive values as floats: the unit of every vectorised loop here (one 16-byte access
// for bf16, two for float). p must be 16-byte aligned.
struct F8 {
  float v[8];
};
__device__ __forceinline__ F8 load8(const float* p) {
  const Raw16 a = load16(p), b = load16(p + 4);
  F8 out;
  for (int k = 0; k < 4; k++) {
    out.v[k] = __builtin_bit_cast(float, a.w[k]);
    out.v[4 + k] = __builtin_bit_cast(float, b.w[k]);
  }
  return out;
}
__device__ __forceinline__ F8 load8(const __nv_bfloat16* p) {
  const Raw16 a = load16(p);
  F8 out;
  for (int k = 0; k < 4; k++) {
    // element 2k is the low half of word k (little endian)
    out.v[2 * k] = __builtin_bit_cast(float, a.w[k] << 16);
    out.v[2 * k + 1] = __builtin_bit_cast(float, a.w[k] & 0xffff0000u);
  }
  return out;
}
__device__ __forceinline__ void store8(float* p, const F8& x) {
  Raw16 a, b;
  for (int k = 0; k < 4; k++) {
    a.w[k] = __builtin_bit_cast(uint32_t, x.v[k]);
    b.w[k] = __builtin_bit_cast(uint32_t, x.v[4 + k]);
  }
  store16(p, a);
  store16(p + 4, b);
}
__device__ __forceinline__ void store8(__nv_bfloat16* p, const F8& x) {
  Raw16 a;
  for (int k = 0; k < 4; k++) {
    const uint32_t lo = __builtin_bit_cast(uint16_t, __float2bfloat16_rn(x.v[2 * k]));
    const uint32_t hi = __builtin_bit_cast(uint16_t, __float2bfloat16_rn(x.v[2 * k + 1]));
    a.w[k] = lo | (hi << 16);
  }
  store16(p, a);
}

// The grid-stride loop of an elementwise kernel over [0, n): when `vec` (every pointer it touches
// 16-byte aligned) unit(u) takes values [8u, 8u + 8) of each whole unit of eight, then one(i) each
// value after them (every value when not `vec`). Launch it with blocks_for_units(n, vec) blocks.
template <class Unit, class One>
__device__ __forceinline__ void for_each_value(int64_t n, bool vec, const Unit& unit, const One& one) {
  int64_t i0 = 0;
  if (vec) {
    const int64_t units = n / 8;
    for (int64_t u = global_thread(); u < units; u += global_threads()) unit(u);
    i0 = units * 8;
  }
  for (int64_t i = i0 + global_thread(); i < n; i += global_threads()) one(i);
}
inline unsigned blocks_for_units(int64_t n, bool vec) { return blocks_for(vec ? n / 8 + 1 : n); }

// Reductions whose result is the same bits on every lane and every run: the xor butterfly makes
// lane l and lane l^m add the same two values (commutative), so all lanes agree.
template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int m = 16; m >= 1; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
  return v;
}
// max where a NaN never wins (as `a > m ? a : m` from 0 on the CPU)
__device__ __forceinline__ float warp_max_nonnan(float v) {
  for (int m = 16; m >= 1; m >>= 1) {
    const float o = __shfl_xor_sync(0xffffffffu, v, m);
    v = o > v ? o : v;
  }
  return v;
}

// Block-wide reductions for blockDim.x a multiple of 32 (at most 1024), every thread taking part.
// `sh` is a shared array of at least 33 elements; it may be passed to the next call at once.
// warp_op reduces a warp (every lane gets the result); lanes past the last warp contribute 0.
template <class T, class WarpOp>
__device__ __forceinline__ T block_reduce(T v, T* sh, WarpOp warp_op) {
  v = warp_op(v);
  const int lane = static_cast<int>(threadIdx.x & 31u), warp = static_cast<int>(threadIdx.x >> 5);
  const int warps = static_cast<int>(blockDim.x >> 5);
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  if (warp == 0) {
    T t = lane < warps ? sh[lane] : T(0);
    t = warp_op(t);
    if (lane == 0) sh[32] = t;
  }
  __syncthreads();
  const T r = sh[32];
  __syncthreads();
  return r;
}
template <class T>
__device__ __forceinline__ T block_sum(T v, T* sh) {
  return block_reduce(v, sh, [](T x) { return warp_sum(x); });
}
__device__ __forceinline__ float block_max_nonnan(float v, float* sh) {
  return block_reduce(v, sh, [](float x) { return warp_max_nonnan(x); });
}

// sum of x[0, n) in double, added in index order (the CPU twins' order) by thread 0, which returns
// it (others return 0). Only thread 0 adds: warps 1.. stage the next tile of x in `tile` while it
// sums the current one, so the chain of dependent adds sets the pace, not memory latency. Every
// thread of the block (kThreads) must call it.
constexpr int kInOrderTile = 1024;
template <class T>
__device__ __forceinline__ double in_order_sum(const T* x, int64_t n, T (*tile)[kInOrderTile]) {
  const int64_t tiles = (n + kInOrderTile - 1) / kInOrderTile;
  const int loaders = static_cast<int>(blockDim.x) - 32;
  const int me = static_cast<int>(threadIdx.x) - 32;
  auto length = [&](int64_t t) {
    return static_cast<int>(n - t * kInOrderTile < kInOrderTile ? n - t * kInOrderTile : kInOrderTile);
  };
  auto stage = [&](int64_t t) {
    const int len = length(t);
    for (int k = me; k < len; k += loaders) tile[t & 1][k] = x[t * kInOrderTile + k];
  };
  if (me >= 0 && tiles > 0) stage(0);
  double sum = 0.0;
  for (int64_t t = 0; t < tiles; t++) {
    __syncthreads();  // tile t staged; the buffer tile t + 1 goes to is no longer read
    if (me >= 0 && t + 1 < tiles) stage(t + 1);
    if (threadIdx.x == 0) {
      const int len = length(t);
      for (int k = 0; k < len; k++) sum = dadd_rn(sum, static_cast<double>(tile[t & 1][k]));
    }
  }
  return sum;
}

}  // namespace ditty::cuda::kdetail
