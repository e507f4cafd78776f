// GPT-NeoX kernels (ditty/neox.h): the qkv split + rotary here; attention and GELU pick the widest
// vector path neox_{avx512,avx2,portable}.cpp that simd_level() allows, on every call (so
// DITTY_SIMD set while the process runs takes effect).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "ditty/cpu_features.h"
#include "ditty/neox.h"
#include "ditty/parallel.h"
#include "neox_internal.h"

namespace ditty::cpu {
namespace {

using neox_detail::AttentionShape;
using neox_detail::Kernels;

const Kernels& kernels() {
#if defined(__x86_64__) || defined(__i386__)
  const char* level = simd_level();
  if (std::strcmp(level, "avx512") == 0) return neox_detail::kAvx512;
  if (std::strcmp(level, "avx2") == 0) return neox_detail::kAvx2;
#endif
  return neox_detail::kPortable;
}

// Per pool thread, grown as needed and reused across calls (O((d + block) S) floats, never T x T).
float* thread_scratch(int64_t floats) {
  thread_local std::vector<float> scratch;
  if (scratch.size() < static_cast<size_t>(floats)) scratch.resize(static_cast<size_t>(floats));
  return scratch.data();
}

// cos and sin [T, R/2] of positions offset + t as src/models/gpt-neox.ts rotaryTables makes them:
// the angle and its cos/sin in double, then rounded to float32.
void rotary_tables(int64_t T, int64_t R, double base, int64_t offset, std::vector<float>& cos, std::vector<float>& sin) {
  const int64_t half = R / 2;
  cos.resize(static_cast<size_t>(T * half));
  sin.resize(static_cast<size_t>(T * half));
  for (int64_t t = 0; t < T; t++) {
    for (int64_t m = 0; m < half; m++) {
      double angle = static_cast<double>(offset + t) * std::pow(base, (-2.0 * static_cast<double>(m)) / static_cast<double>(R));
      cos[t * half + m] = static_cast<float>(std::cos(angle));
      sin[t * half + m] = static_cast<float>(std::sin(angle));
    }
  }
}

// x' = x cos + rotate_half(x) sin on the first R values (rotate_half(x) = [-x2, x1]); each product
// and the sum rounded to float32 as the tfjs ops do (no fused multiply-add on baseline x86-64).
void rotate(const float* x, const float* cos, const float* sin, int64_t half, float* y) {
  for (int64_t m = 0; m < half; m++) {
    float x1 = x[m], x2 = x[m + half], c = cos[m], s = sin[m];
    float a = x1 * c, b = -x2 * s;
    y[m] = a + b;
    float e = x2 * c, f = x1 * s;
    y[m + half] = e + f;
  }
}

// The transposed (= inverse) rotation: dx1 = dy1 cos + dy2 sin, dx2 = dy2 cos - dy1 sin.
void rotate_back(const float* dy, const float* cos, const float* sin, int64_t half, float* dx) {
  for (int64_t m = 0; m < half; m++) {
    float d1 = dy[m], d2 = dy[m + half], c = cos[m], s = sin[m];
    dx[m] = d1 * c + d2 * s;
    dx[m + half] = d2 * c - d1 * s;
  }
}

// f(packed, split, cos, sin) for every position (b, t) and head h, positions over the pool: packed is
// the head's offset in the [B,T,heads,3,d] projection rows, split its offset in the [B,heads,T,d]
// q/k/v tensors, cos and sin the position's rotary tables.
template <class F>
void for_each_head(int64_t B, int64_t T, int64_t heads, int64_t d, int64_t R, double base, int64_t offset, F f) {
  std::vector<float> cos, sin;
  rotary_tables(T, R, base, offset, cos, sin);
  const int64_t half = R / 2;
  parallel_for(static_cast<size_t>(B * T), 16, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; r++) {
      const int64_t b = static_cast<int64_t>(r) / T, t = static_cast<int64_t>(r) % T;
      for (int64_t h = 0; h < heads; h++) {
        f((static_cast<int64_t>(r) * heads + h) * 3 * d, ((b * heads + h) * T + t) * d, cos.data() + t * half,
          sin.data() + t * half);
      }
    }
  });
}

}  // namespace

void qkv_rotary_forward(const float* qkv, int64_t B, int64_t T, int64_t heads, int64_t d, int64_t R, double base,
                        int64_t offset, float* q, float* k, float* v) {
  const int64_t half = R / 2;
  for_each_head(B, T, heads, d, R, base, offset, [&](int64_t packed, int64_t split, const float* c, const float* s) {
    const float* src = qkv + packed;
    rotate(src, c, s, half, q + split);
    std::memcpy(q + split + R, src + R, sizeof(float) * (d - R));
    rotate(src + d, c, s, half, k + split);
    std::memcpy(k + split + R, src + d + R, sizeof(float) * (d - R));
    std::memcpy(v + split, src + 2 * d, sizeof(float) * d);
  });
}

void qkv_rotary_backward(const float* dq, const float* dk, const float* dv, int64_t B, int64_t T, int64_t heads,
                         int64_t d, int64_t R, double base, int64_t offset, float* dqkv) {
  const int64_t half = R / 2;
  for_each_head(B, T, heads, d, R, base, offset, [&](int64_t packed, int64_t split, const float* c, const float* s) {
    float* dst = dqkv + packed;
    rotate_back(dq + split, c, s, half, dst);
    std::memcpy(dst + R, dq + split + R, sizeof(float) * (d - R));
    rotate_back(dk + split, c, s, half, dst + d);
    std::memcpy(dst + d + R, dk + split + R, sizeof(float) * (d - R));
    std::memcpy(dst + 2 * d, dv + split, sizeof(float) * d);
  });
}

void attention_forward(const float* q, const float* k, const float* v, int64_t B, int64_t H, int64_t T, int64_t S,
                       int64_t d, float* out, float* lse) {
  const AttentionShape a{q, k, v, B, H, T, S, d, static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)))};
  const Kernels& kern = kernels();
  const int64_t blocks = (T + neox_detail::kBlock - 1) / neox_detail::kBlock;
  // one task per (batch, head, query block); later blocks see more keys, the pool balances them
  parallel_for(static_cast<size_t>(B * H * blocks), 1, [&](size_t i0, size_t i1) {
    float* scratch = thread_scratch(neox_detail::forward_scratch(a));
    for (size_t i = i0; i < i1; i++) {
      const int64_t bh = static_cast<int64_t>(i) / blocks, t0 = static_cast<int64_t>(i) % blocks * neox_detail::kBlock;
      kern.attention_forward_block(a, bh, t0, std::min(T, t0 + neox_detail::kBlock), out, lse, scratch);
    }
  });
}

void attention_backward(const float* dout, const float* q, const float* k, const float* v, const float* out,
                        const float* lse, int64_t B, int64_t H, int64_t T, int64_t d, float* dq, float* dk, float* dv) {
  const AttentionShape a{q, k, v, B, H, T, T, d, static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)))};
  const Kernels& kern = kernels();
  if (B * H >= thread_count()) {
    // a head per task: 5 products per score tile
    parallel_for(static_cast<size_t>(B * H), 1, [&](size_t i0, size_t i1) {
      float* scratch = thread_scratch(neox_detail::backward_scratch(a));
      for (size_t i = i0; i < i1; i++) kern.attention_backward_head(a, static_cast<int64_t>(i), dout, out, lse, dq, dk, dv, scratch);
    });
    return;
  }
  // fewer heads than threads: key blocks (dk, dv) and query blocks (dq) as separate tasks, 7 products
  // per tile but B*H*2*blocks tasks; the same bits as the per-head path
  const int64_t blocks = (T + neox_detail::kBlock - 1) / neox_detail::kBlock;
  parallel_for(static_cast<size_t>(2 * B * H * blocks), 1, [&](size_t i0, size_t i1) {
    float* scratch = thread_scratch(neox_detail::backward_scratch(a));
    for (size_t i = i0; i < i1; i++) {
      const int64_t task = static_cast<int64_t>(i), bh = task / (2 * blocks), block = task % (2 * blocks) / 2;
      kern.attention_backward_block(a, bh, block, task % 2 == 0, dout, out, lse, dq, dk, dv, scratch);
    }
  });
}

void gelu_forward(const float* x, float* out, int64_t n, Gelu kind) {
  const Kernels& kern = kernels();
  parallel_for(static_cast<size_t>(n), 1 << 14, [&](size_t i0, size_t i1) {
    kern.gelu_forward(x + i0, out + i0, static_cast<int64_t>(i1 - i0), kind);
  });
}

void gelu_backward(const float* x, const float* dy, float* dx, int64_t n, Gelu kind) {
  const Kernels& kern = kernels();
  parallel_for(static_cast<size_t>(n), 1 << 14, [&](size_t i0, size_t i1) {
    kern.gelu_backward(x + i0, dy + i0, dx + i0, static_cast<int64_t>(i1 - i0), kind);
  });
}

}  // namespace ditty::cpu
