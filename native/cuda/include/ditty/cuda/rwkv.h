// RWKV-4 kernels on a CUDA device: the twins of native/include/ditty/rwkv.h (same semantics, same
// state layouts). Pointers are device pointers; every call only enqueues work on `stream`.
// Activations are float or __nv_bfloat16 (S); per-channel weights (mixes, time_decay, time_first)
// and the WKV state are float; arithmetic is float throughout.
//
// Launch shapes:
// - elementwise kernels (time mix, gates): 256 threads, a grid-stride loop over at most 8192 blocks;
//   time mix walks [B*T*C] elements so every warp reads consecutive channels.
// - WKV: one thread per (batch row, channel) walking all T positions (the recurrence is serial in t),
//   blocks of 32 threads so that B*C = 5120 (RWKV-14B, B = 1) spreads 160 warps over every SM. The
//   loop is latency-bound (two exps and a few dependent FMAs per step; 160 warps for 132 SMs x 4
//   schedulers), so the k, v (and dy, states) loads of the next 8 (backward: 4) positions are
//   issued before the current ones are consumed; the state chain itself (pp <- max(pp + w, k)) is
//   two instructions per step. If WKV ever shows up in the step time, the lever is a chunked scan
//   over t (states compose over a chunk with decay e^{L w}) for more threads.
//   sm_90 registers (nvcc 13.0 -Xptxas -v; no spills, no stack frame): forward 116 (float) / 113
//   (bf16), backward 128 / 136.
#pragma once
#include <cstdint>

#include "ditty/cuda/runtime.h"

namespace ditty::cuda {

// outs[j][b,t,:] = x[b,t,:] * mix_j + prev[b,t,:] * (1 - mix_j), prev[b,t] = x[b,t-1], prev[b,0] =
// state[b,:] (zeros when state is null). x [B,T,C], state [B,C], mixes[j] [C] (float), n_mix <= 4.
// `mixes` and `outs` are host arrays of device pointers.
void time_mix_forward(const float* x, const float* state, int64_t B, int64_t T, int64_t C, const float* const* mixes,
                      int n_mix, float* const* outs, cudaStream_t stream);
void time_mix_forward(const __nv_bfloat16* x, const __nv_bfloat16* state, int64_t B, int64_t T, int64_t C,
                      const float* const* mixes, int n_mix, __nv_bfloat16* const* outs, cudaStream_t stream);
// dx (+)= sum_j douts_j[b,t] m_j + douts_j[b,t+1] (1 - m_j); with accumulate the old dx is added
// (in float, one rounding to S at the end).
void time_mix_backward(const float* const* douts, const float* const* mixes, int n_mix, int64_t B, int64_t T,
                       int64_t C, float* dx, bool accumulate, cudaStream_t stream);
void time_mix_backward(const __nv_bfloat16* const* douts, const float* const* mixes, int n_mix, int64_t B, int64_t T,
                       int64_t C, __nv_bfloat16* dx, bool accumulate, cudaStream_t stream);

// y [B,T,C] = WKV with w = -exp(time_decay[c]) (in float), u = time_first[c] on k, v [B,T,C].
// state (float [3,B,C]: aa, bb, pp) when not null is the start state and is overwritten with the
// end state; null means the empty state (pp = -1e38).
void wkv_forward(const float* time_decay, const float* time_first, const float* k, const float* v, int64_t B,
                 int64_t T, int64_t C, float* y, float* state, cudaStream_t stream);
void wkv_forward(const float* time_decay, const float* time_first, const __nv_bfloat16* k, const __nv_bfloat16* v,
                 int64_t B, int64_t T, int64_t C, __nv_bfloat16* y, float* state, cudaStream_t stream);

// Floats of device scratch wkv_backward needs: the state before every position, 3*B*T*C
// (31.5 MiB at B = 1, T = 512, C = 5120). Global scratch keeps each thread's frame small at any T.
inline int64_t wkv_backward_scratch_floats(int64_t B, int64_t T, int64_t C) { return 3 * B * T * C; }
// dk, dv [B,T,C] (written) from dy, starting from the empty state (decay and first are frozen).
// A forward sweep stores the states in `scratch`; the reverse sweep rebuilds each step's terms from
// them (off its critical path) in the order of the CPU twin.
void wkv_backward(const float* time_decay, const float* time_first, const float* k, const float* v, const float* dy,
                  int64_t B, int64_t T, int64_t C, float* dk, float* dv, float* scratch, cudaStream_t stream);
void wkv_backward(const float* time_decay, const float* time_first, const __nv_bfloat16* k, const __nv_bfloat16* v,
                  const __nv_bfloat16* dy, int64_t B, int64_t T, int64_t C, __nv_bfloat16* dk, __nv_bfloat16* dv,
                  float* scratch, cudaStream_t stream);

// out = sigmoid(a) * y
void sigmoid_gate_forward(const float* a, const float* y, float* out, int64_t n, cudaStream_t stream);
void sigmoid_gate_forward(const __nv_bfloat16* a, const __nv_bfloat16* y, __nv_bfloat16* out, int64_t n,
                          cudaStream_t stream);
// da = dout * y * s (1 - s), dy = dout * s (either may be null)
void sigmoid_gate_backward(const float* a, const float* y, const float* dout, float* da, float* dy, int64_t n,
                           cudaStream_t stream);
void sigmoid_gate_backward(const __nv_bfloat16* a, const __nv_bfloat16* y, const __nv_bfloat16* dout,
                           __nv_bfloat16* da, __nv_bfloat16* dy, int64_t n, cudaStream_t stream);
// out = relu(x)^2
void relu_square_forward(const float* x, float* out, int64_t n, cudaStream_t stream);
void relu_square_forward(const __nv_bfloat16* x, __nv_bfloat16* out, int64_t n, cudaStream_t stream);
// dx = dy * 2 relu(x)
void relu_square_backward(const float* x, const float* dy, float* dx, int64_t n, cudaStream_t stream);
void relu_square_backward(const __nv_bfloat16* x, const __nv_bfloat16* dy, __nv_bfloat16* dx, int64_t n,
                          cudaStream_t stream);

}  // namespace ditty::cuda
