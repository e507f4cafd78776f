// LoRA over a frozen linear: y += scaling * (dropout(x) A^T) B^T, A [r,in], B [out,r].
#pragma once
#include <cstdint>

namespace ditty::cpu {

// The inverted-dropout mask value of flat element i (0 or 1/(1-p)), identical to
// src/random/rng.ts dropoutMask(n, p, seed)[i]: mulberry32 is counter-based, so element i
// depends on (seed, i) only. p = 0 gives 1. p is a double because dropoutMask compares the
// uniform draw with the JS number p and computes 1/(1-p) in double: a float p would flip a few
// draws in 2^32 and round `keep` differently.
float dropout_mask_value(uint32_t seed, uint64_t i, double p);

// h[rows,r] = dropout(x) A^T (saved for backward); y[rows,out] += scaling * h B^T.
void lora_forward(const float* x, int64_t rows, int64_t in, int64_t out, int64_t r, const float* A, const float* B,
                  float scaling, double p, uint32_t seed, float* h, float* y);
// gh = scaling * dy B; dA += gh^T dropout(x); dB += scaling * dy^T h; dx += mask * (gh A) when dx is not null.
void lora_backward(const float* x, const float* h, const float* dy, int64_t rows, int64_t in, int64_t out, int64_t r,
                   const float* A, const float* B, float scaling, double p, uint32_t seed, float* dA, float* dB,
                   float* dx);

}  // namespace ditty::cpu
