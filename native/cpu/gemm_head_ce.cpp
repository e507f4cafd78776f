// The output head and weighted next-token cross-entropy in one pass (ditty/common.h), the same
// function as src/engine/cross-entropy.ts headCrossEntropy: rows with weight 0 are dropped first,
// so no logits are computed for them; the rest go `chunk` at a time through the head GEMM, each
// row's logsumexp and softmax are taken in place, and the gradient GEMM reuses that chunk.
// The loss is summed per row in double, then over rows in order: the same on any thread count.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "ditty/common.h"
#include "ditty/gemm.h"
#include "ditty/cpu_features.h"
#include "ditty/parallel.h"
#include "gemm_intrinsics.h"

namespace ditty::cpu {
namespace {

// z[j] = exp(z[j] - m) for j < V, returning their sum in double. Cephes' expf: 2^n * p(r) with
// r = x - n ln2 in two parts and a degree-6 polynomial, within ~1 ulp of std::exp.
__attribute__((target("avx512f,avx512bw,avx512vl,fma"))) double exp_sum_avx512(float* z, int64_t V, float m) {
  const __m512 vm = _mm512_set1_ps(m);
  __m512d s0 = _mm512_setzero_pd();
  __m512d s1 = _mm512_setzero_pd();
  int64_t j = 0;
  for (; j + 16 <= V; j += 16) {
    const __m512 x = _mm512_max_ps(_mm512_sub_ps(_mm512_loadu_ps(z + j), vm), _mm512_set1_ps(-104.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    const __m512 y = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.0f));
    const __m512 e = _mm512_scalef_ps(y, n);
    _mm512_storeu_ps(z + j, e);
    s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
  }
  double sum = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
  for (; j < V; j++) {
    const float e = std::exp(z[j] - m);
    z[j] = e;
    sum += e;
  }
  return sum;
}

// max over z[0..V) with `z > m ? z : m` (a NaN never wins; vmaxps returns its second operand then)
__attribute__((target("avx512f,avx512bw,avx512vl"))) float max_avx512(const float* z, int64_t V) {
  __m512 vm = _mm512_set1_ps(z[0]);
  int64_t j = 0;
  for (; j + 16 <= V; j += 16) vm = _mm512_max_ps(_mm512_loadu_ps(z + j), vm);
  float m = _mm512_reduce_max_ps(vm);
  for (; j < V; j++) m = z[j] > m ? z[j] : m;
  return m;
}

double exp_sum(float* z, int64_t V, float m) {
  double sum = 0.0;
  for (int64_t j = 0; j < V; j++) {
    const float e = std::exp(z[j] - m);
    z[j] = e;
    sum += e;
  }
  return sum;
}

}  // namespace

double head_cross_entropy(const float* hidden, int64_t N, int64_t C, const float* head, int64_t V,
                          const int32_t* targets, const float* weights, float grad_scale, float* dhidden,
                          bool accumulate, int64_t chunk) {
  std::vector<int64_t> active;
  for (int64_t i = 0; i < N; i++) {
    if (weights[i] != 0.0f) active.push_back(i);
  }
  if (dhidden && !accumulate) {
    for (int64_t i = 0; i < N; i++) {
      if (weights[i] == 0.0f) std::fill_n(dhidden + i * C, C, 0.0f);
    }
  }
  const int64_t n_active = static_cast<int64_t>(active.size());
  if (n_active == 0 || V <= 0) return 0.0;
  chunk = std::clamp<int64_t>(chunk, 1, n_active);
  std::unique_ptr<float[]> hb(new float[chunk * C]);
  std::unique_ptr<float[]> z(new float[chunk * V]);
  std::unique_ptr<float[]> dh(dhidden ? new float[chunk * C] : nullptr);
  std::vector<double> row_loss(static_cast<size_t>(n_active));
  std::vector<float> row_scale(static_cast<size_t>(chunk));
  const bool simd512 = std::strcmp(simd_level(), "avx512") == 0;

  for (int64_t c0 = 0; c0 < n_active; c0 += chunk) {
    const int64_t n = std::min(chunk, n_active - c0);
    for (int64_t i = 0; i < n; i++) std::memcpy(hb.get() + i * C, hidden + active[c0 + i] * C, sizeof(float) * C);
    float* zp = z.get();
    gemm(false, true, n, V, C, 1.0f, hb.get(), C, head, C, 0.0f, zp, V);
    parallel_for(static_cast<size_t>(n), 1, [&](size_t i0, size_t i1) {
      for (size_t i = i0; i < i1; i++) {
        const int64_t row = active[c0 + i];
        float* zr = zp + i * V;
        const int32_t t = targets[row];
        const float picked = zr[t];
        float m = zr[0];
        if (simd512) {
          m = max_avx512(zr, V);
        } else {
          for (int64_t j = 1; j < V; j++) m = zr[j] > m ? zr[j] : m;
        }
        // exp(z - max) in place: every term <= 1, the sum in double
        const double sum = simd512 ? exp_sum_avx512(zr, V, m) : exp_sum(zr, V, m);
        const double lse = static_cast<double>(m) + std::log(sum);
        const double w = weights[row];
        row_loss[c0 + i] = w * (lse - static_cast<double>(picked));
        if (dhidden) {
          // The gradient row is (e / sum - onehot) * w * grad_scale. The GEMM takes e as it is,
          // with e_t - sum at the target (so p_t - 1 never cancels in float), and the row is
          // scaled by w * grad_scale / sum afterwards: no extra pass over the [n, V] chunk.
          zr[t] = static_cast<float>(static_cast<double>(zr[t]) - sum);
          row_scale[i] = static_cast<float>(w * static_cast<double>(grad_scale) / sum);
        }
      }
    });
    if (!dhidden) continue;
    // dh^T [C, n] = head^T e^T: packs the head as contiguous A panels, and e^T with the register
    // transpose (measured ~12% faster than e head, which packs the head twice per chunk)
    float* dt = dh.get();
    gemm(true, true, C, n, V, 1.0f, head, C, zp, V, 0.0f, dt, n);
    for (int64_t i = 0; i < n; i++) {
      float* dst = dhidden + active[c0 + i] * C;
      const float sc = row_scale[i];
      if (accumulate) {
        for (int64_t k = 0; k < C; k++) dst[k] += dt[k * n + i] * sc;
      } else {
        for (int64_t k = 0; k < C; k++) dst[k] = dt[k * n + i] * sc;
      }
    }
  }
  double total = 0.0;
  for (double l : row_loss) total += l;
  return total;
}

}  // namespace ditty::cpu
