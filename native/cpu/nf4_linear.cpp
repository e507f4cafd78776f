// Linears over an NF4 weight that dequantize it one panel at a time into per-thread scratch and
// run the single-threaded blocked GEMM on that panel: the float weight never exists whole, and
// each output element is computed by one task (so results do not depend on the thread count).
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

// Weight rows (forward) or columns (input gradient) per panel: wide enough that re-packing the
// activations per panel stays a few percent of the product, small enough for a few panels per thread.
constexpr int64_t PANEL = 128;

bool avx512() { return std::strcmp(simd_level(), "avx512") == 0; }

}  // namespace

void nf4_linear_forward(const Nf4Weight& w, const float* bias, const float* x, int64_t rows, float* y,
                        bool accumulate) {
  const int64_t out = w.rows;
  const int64_t in = w.cols;
  if (rows <= 0 || out <= 0) return;
  const auto& kern = gemm_detail::kernel_for_simd();
  const bool simd512 = avx512();
  const int64_t tasks = (out + PANEL - 1) / PANEL;
  parallel_for(static_cast<size_t>(tasks), 1, [&](size_t t0, size_t t1) {
    thread_local std::vector<float> panel;
    if (panel.size() < static_cast<size_t>(PANEL * in)) panel.resize(static_cast<size_t>(PANEL * in));
    for (size_t t = t0; t < t1; t++) {
      const int64_t j0 = static_cast<int64_t>(t) * PANEL;
      const int64_t jn = std::min(PANEL, out - j0);
      nf4_detail::dequantize_range(w, j0 * in, (j0 + jn) * in, panel.data(), simd512);
      float beta = accumulate ? 1.0f : 0.0f;
      if (bias) {
        for (int64_t r = 0; r < rows; r++) {
          float* yr = y + r * out + j0;
          if (accumulate) {
            for (int64_t j = 0; j < jn; j++) yr[j] += bias[j0 + j];
          } else {
            std::memcpy(yr, bias + j0, sizeof(float) * jn);
          }
        }
        beta = 1.0f;
      }
      gemm_detail::gemm_serial(kern, false, true, rows, jn, in, 1.0f, x, in, panel.data(), in, beta, y + j0, out);
    }
  });
}

void nf4_linear_input_grad(const Nf4Weight& w, const float* dy, int64_t rows, float* dx, bool accumulate) {
  const int64_t out = w.rows;
  const int64_t in = w.cols;
  if (rows <= 0 || in <= 0) return;
  const auto& kern = gemm_detail::kernel_for_simd();
  const bool simd512 = avx512();
  const int64_t tasks = (in + PANEL - 1) / PANEL;
  parallel_for(static_cast<size_t>(tasks), 1, [&](size_t t0, size_t t1) {
    thread_local std::vector<float> panel;
    if (panel.size() < static_cast<size_t>(PANEL * out)) panel.resize(static_cast<size_t>(PANEL * out));
    for (size_t t = t0; t < t1; t++) {
      const int64_t c0 = static_cast<int64_t>(t) * PANEL;
      const int64_t cn = std::min(PANEL, in - c0);
      // the [out, cn] column slice of W, row by row
      for (int64_t r = 0; r < out; r++) nf4_detail::dequantize_range(w, r * in + c0, r * in + c0 + cn, panel.data() + r * cn, simd512);
      gemm_detail::gemm_serial(kern, false, false, rows, cn, out, 1.0f, dy, out, panel.data(), cn,
                               accumulate ? 1.0f : 0.0f, dx + c0, in);
    }
  });
}

}  // namespace ditty::cpu
