// Kernels both architectures use, on a CUDA device: the twins of native/include/ditty/common.h.
// Pointers are device pointers; every call only enqueues work on `stream` (no host round trip).
// Activations are float or __nv_bfloat16 (S), computed in float and rounded to S once per output;
// layer-norm parameters, LoRA gradients and AdamW state are float.
//
// Launch shapes: elementwise kernels are grid-stride loops of 256 threads over at most 8192 blocks,
// eight values per step (16-byte accesses) when every pointer is 16-byte aligned, one otherwise;
// row kernels (layer norm, cross-entropy) run one block per row (grid-stride over rows).
#pragma once
#include <cstdint>

#include "ditty/cuda/runtime.h"

namespace ditty::cuda {

// out[i,:] = table[ids[i],:]; ids must be in [0, V) (checked by the caller).
void embedding_forward(const int32_t* ids, int64_t n, const float* table, int64_t C, float* out, cudaStream_t stream);
void embedding_forward(const int32_t* ids, int64_t n, const __nv_bfloat16* table, int64_t C, __nv_bfloat16* out,
                       cudaStream_t stream);

// torch.nn.LayerNorm over the last axis (biased variance), w and b float [C]; mean/rstd float [N]
// are saved for backward. Statistics in float, two passes (mean, then squared deviations).
void layernorm_forward(const float* x, const float* w, const float* b, int64_t N, int64_t C, float eps, float* out,
                       float* mean, float* rstd, cudaStream_t stream);
void layernorm_forward(const __nv_bfloat16* x, const float* w, const float* b, int64_t N, int64_t C, float eps,
                       __nv_bfloat16* out, float* mean, float* rstd, cudaStream_t stream);
// The residual add fused in: sum = a + r (rounded to S, written: the new residual stream), then
// out = LayerNorm(sum). sum may alias a or r.
void residual_layernorm_forward(const float* a, const float* r, float* sum, const float* w, const float* b, int64_t N,
                                int64_t C, float eps, float* out, float* mean, float* rstd, cudaStream_t stream);
void residual_layernorm_forward(const __nv_bfloat16* a, const __nv_bfloat16* r, __nv_bfloat16* sum, const float* w,
                                const float* b, int64_t N, int64_t C, float eps, __nv_bfloat16* out, float* mean,
                                float* rstd, cudaStream_t stream);
// dx (+)= d LayerNorm / dx given dy (weight and bias frozen). With `residual` (may be null) the
// residual stream's gradient is added too: dx = residual + LN'(dy) (the fused residual backward);
// with `accumulate` the old dx is added. The sum is formed in float and rounded to S once. dx may
// alias dy or residual.
void layernorm_backward(const float* dy, const float* x, const float* w, const float* mean, const float* rstd,
                        int64_t N, int64_t C, float* dx, bool accumulate, const float* residual, cudaStream_t stream);
void layernorm_backward(const __nv_bfloat16* dy, const __nv_bfloat16* x, const float* w, const float* mean,
                        const float* rstd, int64_t N, int64_t C, __nv_bfloat16* dx, bool accumulate,
                        const __nv_bfloat16* residual, cudaStream_t stream);

void add(const float* a, const float* b, float* out, int64_t n, cudaStream_t stream);  // out may alias a or b
void add(const __nv_bfloat16* a, const __nv_bfloat16* b, __nv_bfloat16* out, int64_t n, cudaStream_t stream);
void add_inplace(float* y, const float* x, int64_t n, cudaStream_t stream);  // y += x
void add_inplace(__nv_bfloat16* y, const __nv_bfloat16* x, int64_t n, cudaStream_t stream);
void scale_inplace(float* x, int64_t n, float s, cudaStream_t stream);  // x *= s
void scale_inplace(__nv_bfloat16* x, int64_t n, float s, cudaStream_t stream);

// Storage conversions (round to nearest even; bf16 -> f32 is exact).
void f32_to_bf16(const float* x, __nv_bfloat16* out, int64_t n, cudaStream_t stream);
void bf16_to_f32(const __nv_bfloat16* x, float* out, int64_t n, cudaStream_t stream);

// Cross-entropy on a chunk of logits [rows, V] (made by the caller's head GEMM), one block per row:
// row_loss[i] = w_i (logsumexp(z_i) - z_i[t_i]) (0 when w_i = 0). With `grad` the logits are
// overwritten in place with dlogits = grad_scale * w_i (softmax(z_i) - onehot(t_i)) (zeros when
// w_i = 0), which the caller's GEMMs turn into dhidden. targets must be in [0, V).
void head_cross_entropy_rows(float* logits, int64_t rows, int64_t V, const int32_t* targets, const float* weights,
                             float grad_scale, float* row_loss, bool grad, cudaStream_t stream);
void head_cross_entropy_rows(__nv_bfloat16* logits, int64_t rows, int64_t V, const int32_t* targets,
                             const float* weights, float grad_scale, float* row_loss, bool grad, cudaStream_t stream);
// *out (+)= sum of x[0, n) in double, in a fixed order (one block): the micro-batch loss from the
// per-row losses of all its chunks.
void sum_to_double(const float* x, int64_t n, double* out, bool accumulate, cudaStream_t stream);

// torch.optim.AdamW on n contiguous floats at 1-based `step`: the same float32 arithmetic as
// ditty::cpu::adamw_step (scalars formed in double on the host and rounded to float once), so the
// results are the CPU twin's bits. When `gate` is not null the step is skipped unless *gate (the
// sum of squares from sum_squares) is finite: the step can be enqueued before the norm is read back.
void adamw_step(float* p, const float* g, float* m, float* v, int64_t n, double lr, double beta1, double beta2,
                double eps, double weight_decay, int64_t step, const double* gate, cudaStream_t stream);

// Doubles of device scratch sum_squares needs.
int64_t sum_squares_scratch_doubles(int64_t n);
// *out = sum of x[i]^2 in double: the bits of ditty::cpu::sum_squares (blocks of 16384 values,
// 16 lanes each summed in order, a fixed tree over the lanes, the block sums in order).
void sum_squares(const float* x, int64_t n, double* out, double* scratch, cudaStream_t stream);
// Global-norm clipping as the adapters do it on the host: norm = sqrt(*sum_sq); when norm is finite,
// max_norm > 0 and coef = max_norm / (norm + 1e-6) < 1 (in double), g *= float(coef).
void clip_by_norm(float* g, int64_t n, const double* sum_sq, double max_norm, cudaStream_t stream);

}  // namespace ditty::cuda
