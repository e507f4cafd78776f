// Internal to the neox family: the per-ISA kernel tables (neox_portable.cpp, neox_avx2.cpp,
// neox_avx512.cpp) that neox.cpp chooses from on each call, and the shapes they share.
#pragma once
#include <cstdint>

#include "ditty/neox.h"

namespace ditty::cpu::neox_detail {

// Query rows per attention block: a block's score rows [kBlock x S] and the packed keys [d x S]
// stay in a core's L2 at S = 512, d = 64 (2 x 128 KiB).
constexpr int64_t kBlock = 64;
// Packed rows are padded to a multiple of the widest vector (16 floats) so tiles never read past them.
inline int64_t padded(int64_t n) { return (n + 15) / 16 * 16; }

struct AttentionShape {
  const float* q;
  const float* k;
  const float* v;
  int64_t B, H, T, S, d;
  float scale;
};

// Floats of scratch one forward block / one backward head needs.
inline int64_t forward_scratch(const AttentionShape& a) { return (a.d + kBlock) * padded(a.S); }
inline int64_t backward_scratch(const AttentionShape& a) { return 2 * (a.d + kBlock) * padded(a.T); }

struct Kernels {
  // Queries t0..t1-1 of head bh = b*H + h: out rows and lse[bh*T + t] (when lse is not null).
  void (*attention_forward_block)(const AttentionShape& a, int64_t bh, int64_t t0, int64_t t1, float* out, float* lse,
                                  float* scratch);
  // All of head bh's gradients (S = T): one thread owns dk, dv of the head, so their sums over
  // query blocks run in a fixed order.
  void (*attention_backward_head)(const AttentionShape& a, int64_t bh, const float* dout, const float* out,
                                  const float* lse, float* dq, float* dk, float* dv, float* scratch);
  // The same gradients (bit for bit) split into more tasks for more threads than heads: dk, dv of
  // key block `block` (keys) or dq of query block `block` (!keys), recomputing P twice.
  void (*attention_backward_block)(const AttentionShape& a, int64_t bh, int64_t block, bool keys, const float* dout,
                                   const float* out, const float* lse, float* dq, float* dk, float* dv, float* scratch);
  void (*gelu_forward)(const float* x, float* out, int64_t n, Gelu kind);
  void (*gelu_backward)(const float* x, const float* dy, float* dx, int64_t n, Gelu kind);
};

extern const Kernels kPortable;
extern const Kernels kAvx2;
extern const Kernels kAvx512;

}  // namespace ditty::cpu::neox_detail
