// Linears over an NF4 weight: the blocked GEMM of gemm.cpp with its B panels dequantized straight
// from the packed weight into the packed-panel layout (one KC x NC block, ~512 KB, at a time per
// thread), so the float weight never exists whole and the product runs at the dense GEMM's speed
// plus one dequantization per weight element per C tile. Each output element is computed by one
// tile in a fixed K order, so results do not depend on the thread count and equal the dense
// linear on the dequantized weight bit for bit.
#include <algorithm>
#include <cstring>
#include <vector>

#include "ditty/cpu_features.h"
#include "ditty/nf4.h"
#include "ditty/parallel.h"
#include "gemm_kernel.h"
#include "nf4_internal.h"

namespace ditty::cpu {
namespace {

struct Nf4Source {
  const Nf4Weight* w;
  bool simd512;
};

// forward: op(B) = W^T, i.e. op(B)[k, j] = W[j, k]: each W row segment is dequantized into a
// small buffer and scattered down its panel column
void pack_transposed(const void* ctx, int64_t j0, int64_t n, int64_t k0, int64_t kc, int nr, float* dst) {
  const auto* s = static_cast<const Nf4Source*>(ctx);
  const int64_t in = s->w->cols;
  thread_local std::vector<float> row;
  if (row.size() < static_cast<size_t>(16 * kc)) row.resize(static_cast<size_t>(16 * kc));
  const bool t16 = nr % 16 == 0 && s->simd512;
  for (int64_t p = 0; p < n; p += nr) {
    const int cols = static_cast<int>(std::min<int64_t>(nr, n - p));
    float* d = dst + (p / nr) * kc * nr;
    int jj = 0;
    for (; t16 && jj + 16 <= cols; jj += 16) {
      for (int q = 0; q < 16; q++) {
        const int64_t start = (j0 + p + jj + q) * in + k0;
        nf4_detail::dequantize_range(*s->w, start, start + kc, row.data() + q * kc, true);
      }
      gemm_detail::transpose16_avx512(row.data(), kc, kc, d + jj, nr);
    }
    for (; jj + 4 <= cols; jj += 4) {
      for (int q = 0; q < 4; q++) {
        const int64_t start = (j0 + p + jj + q) * in + k0;
        nf4_detail::dequantize_range(*s->w, start, start + kc, row.data() + q * kc, s->simd512);
      }
      const float* r0 = row.data();
      for (int64_t k = 0; k < kc; k++) {
        float* dk = d + k * nr + jj;
        dk[0] = r0[k];
        dk[1] = r0[kc + k];
        dk[2] = r0[2 * kc + k];
        dk[3] = r0[3 * kc + k];
      }
    }
    for (; jj < cols; jj++) {
      const int64_t start = (j0 + p + jj) * in + k0;
      nf4_detail::dequantize_range(*s->w, start, start + kc, row.data(), s->simd512);
      for (int64_t k = 0; k < kc; k++) d[k * nr + jj] = row[k];
    }
    for (; jj < nr; jj++)
      for (int64_t k = 0; k < kc; k++) d[k * nr + jj] = 0.0f;
  }
}

// input gradient: op(B) = W, i.e. op(B)[k, j] = W[k, j]: each panel row is a contiguous W segment
void pack_plain(const void* ctx, int64_t j0, int64_t n, int64_t k0, int64_t kc, int nr, float* dst) {
  const auto* s = static_cast<const Nf4Source*>(ctx);
  const int64_t in = s->w->cols;
  for (int64_t p = 0; p < n; p += nr) {
    const int cols = static_cast<int>(std::min<int64_t>(nr, n - p));
    float* d = dst + (p / nr) * kc * nr;
    for (int64_t k = 0; k < kc; k++) {
      const int64_t start = (k0 + k) * in + j0 + p;
      nf4_detail::dequantize_range(*s->w, start, start + cols, d + k * nr, s->simd512);
      for (int jj = cols; jj < nr; jj++) d[k * nr + jj] = 0.0f;
    }
  }
}

bool avx512() { return std::strcmp(simd_level(), "avx512") == 0; }

}  // namespace

void nf4_linear_forward(const Nf4Weight& w, const float* bias, const float* x, int64_t rows, float* y,
                        bool accumulate) {
  const int64_t out = w.rows;
  const int64_t in = w.cols;
  if (rows <= 0 || out <= 0) return;
  const float beta = gemm_detail::bias_prefill(bias, out, rows, y, accumulate);
  const Nf4Source src{&w, avx512()};
  gemm_detail::gemm_own_source(false, rows, out, in, 1.0f, x, in, gemm_detail::BSource{pack_transposed, &src}, beta, y,
                               out);
}

void nf4_linear_input_grad(const Nf4Weight& w, const float* dy, int64_t rows, float* dx, bool accumulate) {
  const int64_t out = w.rows;
  const int64_t in = w.cols;
  if (rows <= 0 || in <= 0) return;
  const Nf4Source src{&w, avx512()};
  gemm_detail::gemm_own_source(false, rows, in, out, 1.0f, dy, out, gemm_detail::BSource{pack_plain, &src},
                               accumulate ? 1.0f : 0.0f, dx, in);
}

}  // namespace ditty::cpu
