// The LoRA dropout mask on the device (ditty/cuda/lora.h), bit-exact with native/cpu/lora.cpp.
#include "ditty/cuda/lora.h"

#include <cmath>

#include "device_helpers.cuh"

namespace ditty::cuda {
namespace {
using namespace kdetail;

// The CPU's Dropout: drop element i when mulberry32(seed + (i+1) * 0x6d2b79f5) < threshold, with
// threshold = ceil(p * 2^32) (up to 2^32) and keep = f32(1 / (1 - p)), both formed in double here.
struct Mask {
  uint64_t threshold = 0;
  float keep = 1.0f;
  uint32_t seed = 0;
  uint64_t first = 0;

  Mask(double p, uint32_t s, uint64_t f) : seed(s), first(f) {
    if (p > 0.0) {
      threshold = static_cast<uint64_t>(std::ceil(p * 4294967296.0));
      keep = static_cast<float>(1.0 / (1.0 - p));
    }
  }

  __device__ __forceinline__ float operator()(int64_t k) const {
    // (i + 1) * 0x6d2b79f5 modulo 2^32 only needs the low 32 bits of i + 1
    uint32_t t = seed + (static_cast<uint32_t>(first + static_cast<uint64_t>(k)) + 1u) * 0x6d2b79f5u;
    t = (t ^ (t >> 15)) * (t | 1u);
    t ^= t + (t ^ (t >> 7)) * (t | 61u);
    t ^= t >> 14;
    return static_cast<uint64_t>(t) < threshold ? 0.0f : keep;
  }
};

// dst[k] = (accumulate ? dst[k] : 0) + src[k] * mask(k), eight at a time when `vec`.
template <class A, class O>
__global__ void __launch_bounds__(kThreads) mask_kernel(const A* src, O* dst, int64_t n, Mask mask, bool accumulate,
                                                         bool vec) {
  for_each_value(
      n, vec,
      [&](int64_t u) {
        const F8 x = load8(src + 8 * u);
        F8 old{};
        if (accumulate) old = load8(dst + 8 * u);
        F8 r;
        for (int j = 0; j < 8; j++) {
          const float v = mul_rn(x.v[j], mask(8 * u + j));
          r.v[j] = accumulate ? add_rn(old.v[j], v) : v;
        }
        store8(dst + 8 * u, r);
      },
      [&](int64_t k) {
        const float v = mul_rn(to_f32(src[k]), mask(k));
        dst[k] = from_f32<O>(accumulate ? add_rn(to_f32(dst[k]), v) : v);
      });
}

template <class A, class O>
void apply(const A* src, O* dst, int64_t n, double p, uint32_t seed, uint64_t first, bool accumulate,
           cudaStream_t stream) {
  if (n <= 0) return;
  const bool vec = aligned16(src) && aligned16(dst);
  launch(mask_kernel<A, O>, dim3(blocks_for_units(n, vec)), dim3(kThreads), 0, stream, src, dst, n,
         Mask(p, seed, first), accumulate, vec);
}

}  // namespace

void lora_dropout(const float* x, float* out, int64_t n, double p, uint32_t seed, uint64_t first, cudaStream_t stream) {
  apply(x, out, n, p, seed, first, false, stream);
}
void lora_dropout(const __nv_bfloat16* x, __nv_bfloat16* out, int64_t n, double p, uint32_t seed, uint64_t first,
                  cudaStream_t stream) {
  apply(x, out, n, p, seed, first, false, stream);
}
void lora_dropout(const __nv_bfloat16* x, float* out, int64_t n, double p, uint32_t seed, uint64_t first,
                  cudaStream_t stream) {
  apply(x, out, n, p, seed, first, false, stream);
}

void lora_dropout_backward(const float* t, float* dx, int64_t n, double p, uint32_t seed, uint64_t first,
                           bool accumulate, cudaStream_t stream) {
  apply(t, dx, n, p, seed, first, accumulate, stream);
}
void lora_dropout_backward(const __nv_bfloat16* t, __nv_bfloat16* dx, int64_t n, double p, uint32_t seed,
                           uint64_t first, bool accumulate, cudaStream_t stream) {
  apply(t, dx, n, p, seed, first, accumulate, stream);
}
void lora_dropout_backward(const float* t, __nv_bfloat16* dx, int64_t n, double p, uint32_t seed, uint64_t first,
                           bool accumulate, cudaStream_t stream) {
  apply(t, dx, n, p, seed, first, accumulate, stream);
}

}  // namespace ditty::cuda
