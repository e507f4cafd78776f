// Embedding gather and the elementwise add / scale kernels: one pass over memory, vectorised,
// split over contiguous ranges (each element is computed alone, so the thread count cannot matter).
#include <algorithm>
#include <cstring>

#include "common_simd.h"
#include "ditty/common.h"
#include "ditty/parallel.h"

namespace ditty::cpu {
namespace {
#define DITTY_SIMD_BODY "common_elementwise.inc"
#include "common_simd_instantiate.h"

// 64K floats (256 KiB) per chunk: below that a pool wake-up costs more than it saves.
constexpr size_t kGrain = 1 << 16;
}  // namespace

void embedding_forward(const int32_t* ids, int64_t n, const float* table, int64_t C, float* out) {
  size_t grain = std::max<size_t>(1, kGrain / static_cast<size_t>(std::max<int64_t>(C, 1)));
  parallel_for(static_cast<size_t>(n), grain, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; r++) std::memcpy(out + r * C, table + static_cast<int64_t>(ids[r]) * C, C * sizeof(float));
  });
}

void add(const float* a, const float* b, float* out, int64_t n) {
  simd::Level lvl = simd::level();
  parallel_for(static_cast<size_t>(n), kGrain, [&](size_t i0, size_t i1) {
    DITTY_SIMD_DISPATCH(lvl, add_range, a + i0, b + i0, out + i0, static_cast<int64_t>(i1 - i0));
  });
}

void add_inplace(float* y, const float* x, int64_t n) {
  simd::Level lvl = simd::level();
  parallel_for(static_cast<size_t>(n), kGrain, [&](size_t i0, size_t i1) {
    DITTY_SIMD_DISPATCH(lvl, add_inplace_range, y + i0, x + i0, static_cast<int64_t>(i1 - i0));
  });
}

void scale_inplace(float* x, int64_t n, float s) {
  simd::Level lvl = simd::level();
  parallel_for(static_cast<size_t>(n), kGrain, [&](size_t i0, size_t i1) {
    DITTY_SIMD_DISPATCH(lvl, scale_inplace_range, x + i0, static_cast<int64_t>(i1 - i0), s);
  });
}

}  // namespace ditty::cpu
