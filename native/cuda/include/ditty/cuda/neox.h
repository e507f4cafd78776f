// GPT-NeoX kernels on a CUDA device: the twins of native/include/ditty/neox.h (same layouts, same
// semantics). Pointers are device pointers; every call only enqueues work on `stream`. Activations
// are float or __nv_bfloat16; lse and scratch are float; arithmetic is float (angles: double).
//
// Launch shapes:
// - qkv split + rotary: one 128-thread block per position (b, t): the block first computes the
//   position's R/2 cos/sin pairs in double (as the CPU twin: angle, cos, sin in double, rounded to
//   float) into shared memory, then every head's q | k | v of the row; all reads coalesced.
// - GELU: 256 threads, grid-stride over at most 8192 blocks.
// - attention (flash-style, fp32 SIMT): a block owns a tile of queries (forward, dq) or of keys
//   (dk, dv) of one (batch, head) and streams the other side's tiles through shared memory; a thread
//   owns RPT rows and every 8th column of a score tile, so a row's max and sum are three
//   xor-shuffles over 8 adjacent lanes, and 4-column groups of an output tile; dot products and
//   products read shared memory 16 bytes per lane (a float4 feeds 4 to 16 FMAs). Tiles per padded
//   head dim DP (32, 64, 128; d <= 128):
//     forward:  DP <= 64: 64 queries x 64 keys, 128 threads;  DP = 128: 64 x 32, 128 threads
//     dq:       DP <= 64: 64 queries x 64 keys, 128 threads;  DP = 128: 32 x 32, 128 threads
//     dk, dv:   DP <= 64: 64 keys x 32 queries, 128 threads;  DP = 128: 32 x 32, 128 threads
//   (each under 99 KiB of dynamic shared memory, the sm_86/89 limit). Blocks with the most causal
//   work are launched first. NeoX-12B (40 heads of 128, T = 512): 320 forward blocks, 640 dq and
//   640 dk/dv blocks. Deterministic: no atomics; dq and dk/dv are separate passes.
//   sm_90 registers (nvcc 13.0 -Xptxas -v, float and bf16 alike; no spills, no stack frame),
//   DP 32 / 64 / 128: forward 128 / 128 / 128, dq 128 / 168 / 94, dk dv 128 / 159 / 138.
#pragma once
#include <cstdint>

#include "ditty/cuda/runtime.h"
#include "ditty/neox.h"

namespace ditty::cuda {

using Gelu = ditty::cpu::Gelu;

// qkv [B,T,heads*3*d] (per head: q | k | v) -> q, k, v [B,heads,T,d]; q and k get the half-split
// rotary on their first R dims (R even, R <= d) at positions offset + t, angle (offset + t) *
// base^(-2m/R).
void qkv_rotary_forward(const float* qkv, int64_t B, int64_t T, int64_t heads, int64_t d, int64_t R, double base,
                        int64_t offset, float* q, float* k, float* v, cudaStream_t stream);
void qkv_rotary_forward(const __nv_bfloat16* qkv, int64_t B, int64_t T, int64_t heads, int64_t d, int64_t R,
                        double base, int64_t offset, __nv_bfloat16* q, __nv_bfloat16* k, __nv_bfloat16* v,
                        cudaStream_t stream);
// dqkv [B,T,heads*3*d] (written) from dq, dk, dv [B,heads,T,d].
void qkv_rotary_backward(const float* dq, const float* dk, const float* dv, int64_t B, int64_t T, int64_t heads,
                         int64_t d, int64_t R, double base, int64_t offset, float* dqkv, cudaStream_t stream);
void qkv_rotary_backward(const __nv_bfloat16* dq, const __nv_bfloat16* dk, const __nv_bfloat16* dv, int64_t B,
                         int64_t T, int64_t heads, int64_t d, int64_t R, double base, int64_t offset,
                         __nv_bfloat16* dqkv, cudaStream_t stream);

// Causal softmax attention, scale 1/sqrt(d), d <= 128: queries q [B,H,T,d] at positions S-T .. S-1
// see keys 0 .. their own position of k, v [B,H,S,d]. out [B,T,H*d]; lse [B,H,T] (float, the row
// log-sum-exp of the scaled scores) when not null.
void attention_forward(const float* q, const float* k, const float* v, int64_t B, int64_t H, int64_t T, int64_t S,
                       int64_t d, float* out, float* lse, cudaStream_t stream);
void attention_forward(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, int64_t B, int64_t H,
                       int64_t T, int64_t S, int64_t d, __nv_bfloat16* out, float* lse, cudaStream_t stream);

// Floats of device scratch attention_backward needs: D = rowsum(dout * out) per query, B*H*T.
inline int64_t attention_backward_scratch_floats(int64_t B, int64_t H, int64_t T) { return B * H * T; }
// dq, dk, dv [B,H,T,d] (written) from dout [B,T,H*d], with S = T; probabilities are recomputed from
// lse, never stored. Two passes: dq per query tile (also writing D to scratch), then dk, dv per key
// tile.
void attention_backward(const float* dout, const float* q, const float* k, const float* v, const float* out,
                        const float* lse, int64_t B, int64_t H, int64_t T, int64_t d, float* dq, float* dk, float* dv,
                        float* scratch, cudaStream_t stream);
void attention_backward(const __nv_bfloat16* dout, const __nv_bfloat16* q, const __nv_bfloat16* k,
                        const __nv_bfloat16* v, const __nv_bfloat16* out, const float* lse, int64_t B, int64_t H,
                        int64_t T, int64_t d, __nv_bfloat16* dq, __nv_bfloat16* dk, __nv_bfloat16* dv, float* scratch,
                        cudaStream_t stream);

void gelu_forward(const float* x, float* out, int64_t n, Gelu kind, cudaStream_t stream);
void gelu_forward(const __nv_bfloat16* x, __nv_bfloat16* out, int64_t n, Gelu kind, cudaStream_t stream);
void gelu_backward(const float* x, const float* dy, float* dx, int64_t n, Gelu kind, cudaStream_t stream);
void gelu_backward(const __nv_bfloat16* x, const __nv_bfloat16* dy, __nv_bfloat16* dx, int64_t n, Gelu kind,
                   cudaStream_t stream);

}  // namespace ditty::cuda
