// NF4 dequantize (bf16/float rows for the GEMMs) and quantize on the device (ditty/cuda/nf4.h),
// bit-exact with native/cpu/nf4.cpp: the same float32 operations, each rounded once.
#include "ditty/cuda/nf4.h"

#include <utility>

#include "device_helpers.cuh"

namespace ditty::cuda {
namespace {
using namespace kdetail;

// bitsandbytes' NF4 code (ditty::cpu::NF4_CODE), as a function so that device code can use it
// without a table in memory.
__host__ __device__ constexpr float nf4_code(int i) {
  switch (i) {
    case 0: return -1.0f;
    case 1: return -0.6961928009986877f;
    case 2: return -0.5250730514526367f;
    case 3: return -0.39491748809814453f;
    case 4: return -0.28444138169288635f;
    case 5: return -0.18477343022823334f;
    case 6: return -0.09105003625154495f;
    case 7: return 0.0f;
    case 8: return 0.07958029955625534f;
    case 9: return 0.16093020141124725f;
    case 10: return 0.24611230194568634f;
    case 11: return 0.33791524171829224f;
    case 12: return 0.44070982933044434f;
    case 13: return 0.5626170039176941f;
    case 14: return 0.7229568362236023f;
    default: return 1.0f;
  }
}
// The float32 midpoints (code[k] + code[k+1]) / 2 (IEEE arithmetic in constant evaluation).
template <int K>
constexpr float kNf4Threshold = (nf4_code(K) + nf4_code(K + 1)) / 2.0f;

// The number of thresholds strictly below s (NaN -> 0), as the CPU's nf4_index.
template <int... K>
__device__ __forceinline__ int nf4_index(float s, std::integer_sequence<int, K...>) {
  return ((s > kNf4Threshold<K> ? 1 : 0) + ...);
}
__device__ __forceinline__ int nf4_index(float s) { return nf4_index(s, std::make_integer_sequence<int, 15>{}); }

__device__ __forceinline__ float block_absmax(const Nf4DeviceWeight& w, int64_t j) {
  if (!w.absmax_q) return w.absmax[j];
  const float scaled = mul_rn(w.nested_map[w.absmax_q[j]], w.nested_absmax[j / w.nested_blocksize]);
  return add_rn(scaled, w.offset ? *w.offset : 0.0f);
}

__device__ __forceinline__ uint32_t load_u32(const uint8_t* p) {
  uint32_t r;
#ifdef __CUDA_ARCH__
  asm volatile("ld.global.u32 %0, [%1];" : "=r"(r) : "l"(p) : "memory");
#else
  std::memcpy(&r, p, sizeof r);
#endif
  return r;
}

// Flat elements [start, start + count) into out[0, count). With kVec, 8 at a time (4 packed bytes
// in, 16 bytes of bf16 out: a warp writes 512 contiguous bytes; all 8 in one quantization block;
// start % 8 == 0, out 16-byte aligned), the rest one at a time.
template <bool kVec, class O>
__global__ void __launch_bounds__(kThreads) dequantize_kernel(Nf4DeviceWeight w, int64_t start, int64_t count, O* out) {
  DITTY_SHARED(float, code, [16]);
  if (threadIdx.x < 16) code[threadIdx.x] = nf4_code(static_cast<int>(threadIdx.x));
  __syncthreads();
  const int64_t bs = w.blocksize;
  int64_t done = 0;
  if constexpr (kVec) {
    const int64_t groups = count / 8;
    for (int64_t g = global_thread(); g < groups; g += global_threads()) {
      const int64_t i = start + 8 * g;
      const float a = block_absmax(w, i / bs);
      const uint32_t bytes = load_u32(w.packed + i / 2);
      F8 v;
      for (int b = 0; b < 4; b++) {
        const unsigned byte = (bytes >> (8 * b)) & 0xffu;
        v.v[2 * b] = mul_rn(code[byte >> 4], a);
        v.v[2 * b + 1] = mul_rn(code[byte & 15u], a);
      }
      store8(out + 8 * g, v);
    }
    done = groups * 8;
  }
  for (int64_t e = done + global_thread(); e < count; e += global_threads()) {
    const int64_t i = start + e;
    const unsigned nib = (w.packed[i >> 1] >> ((~i & 1) << 2)) & 15u;
    out[e] = from_f32<O>(mul_rn(code[nib], block_absmax(w, i / bs)));
  }
}

template <class O>
void dequantize(const Nf4DeviceWeight& w, int64_t r0, int64_t r1, O* out, cudaStream_t stream) {
  if (r1 <= r0 || w.cols <= 0) return;
  const int64_t start = r0 * w.cols, count = (r1 - r0) * w.cols;
  const bool vec = w.blocksize % 8 == 0 && start % 8 == 0 && aligned16(out) &&
                   (reinterpret_cast<uintptr_t>(w.packed + start / 2) & 3u) == 0;
  if (vec) {
    launch(dequantize_kernel<true, O>, dim3(blocks_for(count / 8 + 1)), dim3(kThreads), 0, stream, w, start, count,
           out);
  } else {
    launch(dequantize_kernel<false, O>, dim3(blocks_for(count)), dim3(kThreads), 0, stream, w, start, count, out);
  }
}

// One warp per quantization block: absmax by max (a NaN never wins), r = 1 / absmax, then each
// lane packs pairs (high nibble first; an odd last element pairs with code 7).
template <class S>
__global__ void __launch_bounds__(kThreads) quantize_kernel(const S* x, int64_t n, int64_t bs, int64_t blocks,
                                                             uint8_t* packed, float* absmax) {
  const int lane = static_cast<int>(threadIdx.x & 31u);
  const int64_t warps = global_threads() / 32;
  for (int64_t b = global_thread() / 32; b < blocks; b += warps) {
    const int64_t start = b * bs, end = start + bs < n ? start + bs : n;
    float m = 0.0f;
    for (int64_t i = start + 2 * lane; i < end; i += 64) {
      const float a0 = fabsf(to_f32(x[i]));
      m = a0 > m ? a0 : m;
      if (i + 1 < end) {
        const float a1 = fabsf(to_f32(x[i + 1]));
        m = a1 > m ? a1 : m;
      }
    }
    m = warp_max_nonnan(m);
    const float r = m == 0.0f ? 0.0f : div_rn(1.0f, m);
    for (int64_t i = start + 2 * lane; i < end; i += 64) {
      const int hi = nf4_index(mul_rn(to_f32(x[i]), r));
      const int lo = i + 1 < end ? nf4_index(mul_rn(to_f32(x[i + 1]), r)) : 7;
      packed[i >> 1] = static_cast<uint8_t>((hi << 4) | lo);
    }
    if (lane == 0) absmax[b] = m;
  }
}

// The double-quant offset: the mean of the absmax values, summed in order in double (the CPU's
// order; any other could round differently).
__global__ void __launch_bounds__(kThreads) offset_kernel(const float* absmax, int64_t blocks, float* offset) {
  DITTY_SHARED(float, tile, [2][kInOrderTile]);
  const double sum = in_order_sum(absmax, blocks, tile);
  if (threadIdx.x == 0) *offset = blocks == 0 ? 0.0f : static_cast<float>(ddiv_rn(sum, static_cast<double>(blocks)));
}

// One block per nested block: absmax of (absmax - offset), then each value's index in the dynamic
// map by the CPU's binary search over the 255 float32 midpoints.
__global__ void __launch_bounds__(kThreads) nested_kernel(const float* absmax, int64_t blocks, int64_t nbs,
                                                           const float* map, const float* offset, uint8_t* absmax_q,
                                                           float* nested_absmax) {
  DITTY_SHARED(float, thr, [256]);
  DITTY_SHARED(float, sh, [33]);
  for (unsigned k = threadIdx.x; k < 255; k += blockDim.x) thr[k] = div_rn(add_rn(map[k], map[k + 1]), 2.0f);
  __syncthreads();
  const float off = *offset;
  const int64_t nested = (blocks + nbs - 1) / nbs;
  for (int64_t q = blockIdx.x; q < nested; q += gridDim.x) {
    const int64_t start = q * nbs, end = start + nbs < blocks ? start + nbs : blocks;
    float m = 0.0f;
    for (int64_t j = start + threadIdx.x; j < end; j += blockDim.x) {
      const float a = fabsf(sub_rn(absmax[j], off));
      m = a > m ? a : m;
    }
    m = block_max_nonnan(m, sh);
    const float r = m == 0.0f ? 0.0f : div_rn(1.0f, m);
    for (int64_t j = start + threadIdx.x; j < end; j += blockDim.x) {
      const float s = mul_rn(sub_rn(absmax[j], off), r);
      int i = 0;
      for (int step = 128; step >= 1; step >>= 1) {
        if (s > thr[i + step - 1]) i += step;
      }
      absmax_q[j] = static_cast<uint8_t>(i);
    }
    if (threadIdx.x == 0) nested_absmax[q] = m;
  }
}

__global__ void __launch_bounds__(32) zero_kernel(float* p) {
  if (threadIdx.x == 0) *p = 0.0f;
}

template <class S>
void quantize(const S* values, int64_t n, int32_t blocksize, bool double_quant, int32_t nested_blocksize,
              const float* nested_map, uint8_t* packed, float* absmax, uint8_t* absmax_q, float* nested_absmax,
              float* offset, cudaStream_t stream) {
  const int64_t bs = blocksize;
  const int64_t blocks = n > 0 ? (n + bs - 1) / bs : 0;
  if (blocks > 0) {
    launch(quantize_kernel<S>, dim3(blocks_for(blocks * 32)), dim3(kThreads), 0, stream, values, n, bs, blocks, packed,
           absmax);
  }
  if (!double_quant) {
    if (offset) launch(zero_kernel, dim3(1), dim3(32), 0, stream, offset);
    return;
  }
  launch(offset_kernel, dim3(1), dim3(kThreads), 0, stream, static_cast<const float*>(absmax), blocks, offset);
  if (blocks == 0) return;
  const int64_t nbs = nested_blocksize;
  const int64_t nested = (blocks + nbs - 1) / nbs;
  launch(nested_kernel, dim3(static_cast<unsigned>(std::min(nested, kMaxBlocks))), dim3(kThreads), 0, stream,
         static_cast<const float*>(absmax), blocks, nbs, nested_map, static_cast<const float*>(offset), absmax_q,
         nested_absmax);
}

}  // namespace

void nf4_dequantize_rows(const Nf4DeviceWeight& w, int64_t r0, int64_t r1, float* out, cudaStream_t stream) {
  dequantize(w, r0, r1, out, stream);
}
void nf4_dequantize_rows(const Nf4DeviceWeight& w, int64_t r0, int64_t r1, __nv_bfloat16* out, cudaStream_t stream) {
  dequantize(w, r0, r1, out, stream);
}

void nf4_quantize(const float* values, int64_t n, int32_t blocksize, bool double_quant, int32_t nested_blocksize,
                  const float* nested_map, uint8_t* packed, float* absmax, uint8_t* absmax_q, float* nested_absmax,
                  float* offset, cudaStream_t stream) {
  quantize(values, n, blocksize, double_quant, nested_blocksize, nested_map, packed, absmax, absmax_q, nested_absmax,
           offset, stream);
}
void nf4_quantize(const __nv_bfloat16* values, int64_t n, int32_t blocksize, bool double_quant,
                  int32_t nested_blocksize, const float* nested_map, uint8_t* packed, float* absmax, uint8_t* absmax_q,
                  float* nested_absmax, float* offset, cudaStream_t stream) {
  quantize(values, n, blocksize, double_quant, nested_blocksize, nested_map, packed, absmax, absmax_q, nested_absmax,
           offset, stream);
}

}  // namespace ditty::cuda
