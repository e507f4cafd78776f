// Kernels both architectures use: embedding, layer norm, elementwise, head + cross-entropy,
// AdamW and gradient norms.
#pragma once
#include <cstdint>

namespace ditty::cpu {

// out[i,:] = table[ids[i],:]; ids must be in [0, V) (checked by the binding).
void embedding_forward(const int32_t* ids, int64_t n, const float* table, int64_t C, float* out);

// torch.nn.LayerNorm over the last axis (biased variance). mean/rstd [N] are saved for backward.
void layernorm_forward(const float* x, const float* w, const float* b, int64_t N, int64_t C, float eps, float* out,
                       float* mean, float* rstd);
// dx (+)= d LayerNorm / dx given dy; weight and bias are frozen (no gradient).
void layernorm_backward(const float* dy, const float* x, const float* w, const float* mean, const float* rstd,
                        int64_t N, int64_t C, float* dx, bool accumulate);

void add(const float* a, const float* b, float* out, int64_t n);  // out may alias a or b
void add_inplace(float* y, const float* x, int64_t n);             // y += x
void scale_inplace(float* x, int64_t n, float s);                  // x *= s

// Loss sum over rows: sum_i w_i (logsumexp(z_i) - z_i[t_i]) with z = hidden head^T, computed
// `chunk` rows at a time (the [N,V] logits are never whole). When dhidden is not null it gets
// (+= when accumulate) grad_scale * w_i (softmax(z_i) - onehot(t_i)) head. Rows with w_i = 0 are skipped.
double head_cross_entropy(const float* hidden, int64_t N, int64_t C, const float* head, int64_t V,
                          const int32_t* targets, const float* weights, float grad_scale, float* dhidden,
                          bool accumulate, int64_t chunk);

// torch.optim.AdamW on n contiguous values at 1-based `step` (the same float32 arithmetic as
// src/runtime/tfjs-adamw.ts). The scalars are doubles because the tfjs engine forms its constants
// (1 - beta1, lr / (1 - beta1^step), ...) in double from the JS numbers and rounds them to float once.
void adamw_step(float* p, const float* g, float* m, float* v, int64_t n, double lr, double beta1, double beta2,
                double eps, double weight_decay, int64_t step);
// sum of squares in double (for the global gradient norm); the same bits for any thread count and
// SIMD path
double sum_squares(const float* x, int64_t n);

}  // namespace ditty::cpu
