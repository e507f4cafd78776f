// LoRA on a CUDA device: the pieces of ditty::cpu::lora_forward / lora_backward that are not GEMMs.
// The products go through cuBLASLt with `scaling` folded into the GEMMs' alpha, as the CPU does:
//   forward   h = xd A^T (alpha 1), y += scaling * h B^T (alpha scaling, beta 1)
//   backward  gh = scaling * dy B (alpha scaling), dB += scaling * dy^T h (alpha scaling, beta 1),
//             dA += gh^T xd (alpha 1, beta 1), t = gh A, then dx += mask * t (lora_dropout_backward)
// with xd = lora_dropout(x) (or x itself when p = 0). Pointers are device pointers; every call only
// enqueues work on `stream`.
#pragma once
#include <cstdint>

#include "ditty/cuda/runtime.h"

namespace ditty::cuda {

// out[k] = x[k] * mask(first + k) for k in [0, n): mask(i) is ditty::cpu::dropout_mask_value(seed, i, p)
// (0 or f32(1 / (1 - p)) from the counter-based mulberry32 draw; 1 when p <= 0), so the result is
// the CPU's float bits (rounded to bf16 for a bf16 out). For x [rows, in], element (r, c) is mask
// index r * in + c; `first` lets a caller work on a slice of rows. out may alias x.
void lora_dropout(const float* x, float* out, int64_t n, double p, uint32_t seed, uint64_t first, cudaStream_t stream);
void lora_dropout(const __nv_bfloat16* x, __nv_bfloat16* out, int64_t n, double p, uint32_t seed, uint64_t first,
                  cudaStream_t stream);
void lora_dropout(const __nv_bfloat16* x, float* out, int64_t n, double p, uint32_t seed, uint64_t first,
                  cudaStream_t stream);

// dx[k] (+)= t[k] * mask(first + k): the input gradient through the dropout mask (t = gh A).
// With accumulate the sum is float(dx) + float(t * mask), rounded to dx's type once. dx may alias t.
void lora_dropout_backward(const float* t, float* dx, int64_t n, double p, uint32_t seed, uint64_t first,
                           bool accumulate, cudaStream_t stream);
void lora_dropout_backward(const __nv_bfloat16* t, __nv_bfloat16* dx, int64_t n, double p, uint32_t seed,
                           uint64_t first, bool accumulate, cudaStream_t stream);
void lora_dropout_backward(const float* t, __nv_bfloat16* dx, int64_t n, double p, uint32_t seed, uint64_t first,
                           bool accumulate, cudaStream_t stream);

}  // namespace ditty::cuda
