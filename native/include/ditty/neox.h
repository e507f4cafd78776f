// GPT-NeoX kernels: qkv split + partial rotary, causal attention (no T x T matrix kept), GELU.
#pragma once
#include <cstdint>

namespace ditty::cpu {

// qkv [B,T,heads*3*d] as the fused projection writes it (per head: q | k | v) -> q, k, v
// [B,heads,T,d]; q and k get the half-split rotary on their first R dims at positions offset + t:
// angle(t, m) = (offset + t) * base^(-2m/R) (computed in double, as src/models/gpt-neox.ts).
void qkv_rotary_forward(const float* qkv, int64_t B, int64_t T, int64_t heads, int64_t d, int64_t R, double base,
                        int64_t offset, float* q, float* k, float* v);
// dqkv [B,T,heads*3*d] (written) from dq, dk, dv [B,heads,T,d].
void qkv_rotary_backward(const float* dq, const float* dk, const float* dv, int64_t B, int64_t T, int64_t heads,
                         int64_t d, int64_t R, double base, int64_t offset, float* dqkv);

// Causal softmax attention with scale 1/sqrt(d): queries q [B,H,T,d] at positions S-T .. S-1 see
// keys 0 .. their own position of k, v [B,H,S,d]. out [B,T,H*d] (heads merged); lse [B,H,T] (the
// row log-sum-exp of the scaled scores) is saved for backward when not null.
void attention_forward(const float* q, const float* k, const float* v, int64_t B, int64_t H, int64_t T, int64_t S,
                       int64_t d, float* out, float* lse);
// dq, dk, dv [B,H,T,d] (written) from dout [B,T,H*d], with S = T (training).
void attention_backward(const float* dout, const float* q, const float* k, const float* v, const float* out,
                        const float* lse, int64_t B, int64_t H, int64_t T, int64_t d, float* dq, float* dk,
                        float* dv);

enum class Gelu : int32_t { Erf = 0, Tanh = 1, Fast = 2 };  // gelu, gelu_new/gelu_pytorch_tanh, gelu_fast
void gelu_forward(const float* x, float* out, int64_t n, Gelu kind);
void gelu_backward(const float* x, const float* dy, float* dx, int64_t n, Gelu kind);

}  // namespace ditty::cpu
