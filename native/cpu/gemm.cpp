// Dense f32 GEMM: a BLIS-style blocked product (packed A and B panels, a register-blocked
// micro-kernel per SIMD level, tiles of C spread over the thread pool), or OpenBLAS when it is
// found at run time and preferred (see gemm_blas.cpp). Also the dense linears built on it.
#include "ditty/gemm.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "ditty/cpu_features.h"
#include "ditty/parallel.h"
#include "gemm_blas.h"
#include "gemm_kernel.h"

namespace ditty::cpu {
namespace gemm_detail {
namespace {

// Portable 4 x 8 tile: plain loops the compiler vectorises for baseline x86-64 (SSE2) into 8
// accumulator registers.
constexpr int PMR = 4;
constexpr int PNR = 8;

void micro_portable(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n, float alpha,
                    bool overwrite) {
  float acc[PMR][PNR] = {};
  for (int64_t k = 0; k < kc; k++) {
    for (int i = 0; i < PMR; i++) {
      const float ai = a[i];
      for (int j = 0; j < PNR; j++) acc[i][j] += ai * b[j];
    }
    a += PMR;
    b += PNR;
  }
  for (int i = 0; i < m; i++) {
    float* row = c + i * ldc;
    for (int j = 0; j < n; j++) row[j] = overwrite ? acc[i][j] * alpha : row[j] + acc[i][j] * alpha;
  }
}

// Rows [i0, i0+m) x columns [k0, k0+kc) of op(A) into micro-panels of mr rows (k-major, zero-padded).
void pack_a(bool transA, const float* A, int64_t lda, int64_t i0, int64_t m, int64_t k0, int64_t kc, int mr,
            float* dst) {
  for (int64_t p = 0; p < m; p += mr) {
    const int rows = static_cast<int>(std::min<int64_t>(mr, m - p));
    float* d = dst + (p / mr) * kc * mr;
    if (!transA && mr <= 16 && transpose16_allowed()) {
      transpose_pack_avx512(A + (i0 + p) * lda + k0, lda, rows, mr, kc, d, mr);
    } else if (!transA) {
      for (int ii = 0; ii < rows; ii++) {
        const float* src = A + (i0 + p + ii) * lda + k0;
        for (int64_t k = 0; k < kc; k++) d[k * mr + ii] = src[k];
      }
      for (int ii = rows; ii < mr; ii++)
        for (int64_t k = 0; k < kc; k++) d[k * mr + ii] = 0.0f;
    } else {
      for (int64_t k = 0; k < kc; k++) {
        const float* src = A + (k0 + k) * lda + i0 + p;
        float* dk = d + k * mr;
        for (int ii = 0; ii < rows; ii++) dk[ii] = src[ii];
        for (int ii = rows; ii < mr; ii++) dk[ii] = 0.0f;
      }
    }
  }
}

void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; i++) {
    float* row = C + i * ldc;
    if (beta == 0.0f) {
      std::fill_n(row, N, 0.0f);
    } else {
      for (int64_t j = 0; j < N; j++) row[j] *= beta;
    }
  }
}

// Block sizes: a packed B block (KC x NC) stays in L2 while the MR x KC A micro-panel in use
// sits in L1 and is reused across the whole block.
constexpr int64_t NC = 512;
constexpr int64_t MC = 240;  // a multiple of every MR (12, 6, 4)

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

}  // namespace

void pack_b(bool transB, const float* B, int64_t ldb, int64_t j0, int64_t n, int64_t k0, int64_t kc, int nr,
            float* dst) {
  for (int64_t p = 0; p < n; p += nr) {
    const int cols = static_cast<int>(std::min<int64_t>(nr, n - p));
    float* d = dst + (p / nr) * kc * nr;
    if (!transB) {
      for (int64_t k = 0; k < kc; k++) {
        const float* src = B + (k0 + k) * ldb + j0 + p;
        float* dk = d + k * nr;
        for (int jj = 0; jj < cols; jj++) dk[jj] = src[jj];
        for (int jj = cols; jj < nr; jj++) dk[jj] = 0.0f;
      }
    } else {
      // B stored [N, K]: rows are read contiguously; 16 at a time transposed in registers with
      // AVX-512, else 4 at a time scattered with stride nr (each k writes 16 adjacent bytes).
      int jj = 0;
      if (nr % 16 == 0 && transpose16_allowed()) {
        for (; jj + 16 <= cols; jj += 16) transpose16_avx512(B + (j0 + p + jj) * ldb + k0, ldb, kc, d + jj, nr);
      }
      for (; jj + 4 <= cols; jj += 4) {
        const float* s0 = B + (j0 + p + jj) * ldb + k0;
        const float* s1 = s0 + ldb;
        const float* s2 = s1 + ldb;
        const float* s3 = s2 + ldb;
        for (int64_t k = 0; k < kc; k++) {
          float* dk = d + k * nr + jj;
          dk[0] = s0[k];
          dk[1] = s1[k];
          dk[2] = s2[k];
          dk[3] = s3[k];
        }
      }
      for (; jj < cols; jj++) {
        const float* src = B + (j0 + p + jj) * ldb + k0;
        for (int64_t k = 0; k < kc; k++) d[k * nr + jj] = src[k];
      }
      for (; jj < nr; jj++)
        for (int64_t k = 0; k < kc; k++) d[k * nr + jj] = 0.0f;
    }
  }
}

const Kernel& kernel_portable() {
  static const Kernel k{PMR, PNR, micro_portable, "ditty portable"};
  return k;
}

bool transpose16_allowed() { return std::strcmp(simd_level(), "avx512") == 0; }

const Kernel& kernel_for_simd() {
  const char* level = simd_level();
  if (std::strcmp(level, "avx512") == 0) return kernel_avx512();
  if (std::strcmp(level, "avx2") == 0) return kernel_avx2();
  return kernel_portable();
}

namespace {

struct DenseB {
  bool transB;
  const float* B;
  int64_t ldb;
};

void pack_dense(const void* ctx, int64_t j0, int64_t n, int64_t k0, int64_t kc, int nr, float* dst) {
  const auto* d = static_cast<const DenseB*>(ctx);
  pack_b(d->transB, d->B, d->ldb, j0, n, k0, kc, nr, dst);
}

// Tiles of C: whole NC-wide column blocks first (each packs its B block once), split along M
// and then N until there are a few tiles per thread. Tiling never changes the result.
template <class Fn>
void for_tiles(const Kernel& kern, int64_t M, int64_t N, Fn&& tile) {
  const int threads = thread_count();
  int64_t tn = (N + NC - 1) / NC;
  int64_t tm = 1;
  const int64_t want = 3 * static_cast<int64_t>(threads);
  while (threads > 1 && tn * tm < want && (M + 2 * tm - 1) / (2 * tm) >= 4 * kern.mr) tm *= 2;
  while (threads > 1 && tn * tm < want && (N + 2 * tn - 1) / (2 * tn) >= 2 * kern.nr) tn *= 2;
  const int64_t rows = round_up((M + tm - 1) / tm, kern.mr);
  const int64_t cols = round_up((N + tn - 1) / tn, kern.nr);
  tm = (M + rows - 1) / rows;
  tn = (N + cols - 1) / cols;
  parallel_for(static_cast<size_t>(tm * tn), 1, [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; t++) {
      const int64_t i0 = static_cast<int64_t>(t) / tn * rows;
      const int64_t j0 = static_cast<int64_t>(t) % tn * cols;
      tile(i0, std::min(rows, M - i0), j0, std::min(cols, N - j0));
    }
  });
}

}  // namespace

void gemm_serial(const Kernel& kern, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                 const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const DenseB d{transB, B, ldb};
  gemm_serial_source(kern, transA, M, N, K, alpha, A, lda, BSource{pack_dense, &d}, 0, beta, C, ldc);
}

void gemm_serial_source(const Kernel& kern, bool transA, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                        int64_t lda, const BSource& src, int64_t j0, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) {
    if (beta != 1.0f) scale_c(M, N, beta, C, ldc);
    return;
  }
  if (beta != 0.0f && beta != 1.0f) scale_c(M, N, beta, C, ldc);
  const int mr = kern.mr;
  const int nr = kern.nr;
  thread_local std::vector<float> apack, bpack;
  // panels are whole micro-panels even where NC or MC is not a multiple of nr or mr
  const int64_t nc_max = round_up(std::min(N, NC), nr);
  const int64_t mc_max = round_up(std::min(M, MC), mr);
  const size_t bsize = static_cast<size_t>(nc_max * std::min(K, KC));
  const size_t asize = static_cast<size_t>(mc_max * std::min(K, KC));
  if (bpack.size() < bsize) bpack.resize(bsize);
  if (apack.size() < asize) apack.resize(asize);
  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc);
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = std::min(KC, K - pc);
      const bool overwrite = pc == 0 && beta == 0.0f;
      src.pack(src.ctx, j0 + jc, nc, pc, kc, nr, bpack.data());
      for (int64_t ic = 0; ic < M; ic += MC) {
        const int64_t mc = std::min(MC, M - ic);
        pack_a(transA, A, lda, ic, mc, pc, kc, mr, apack.data());
        for (int64_t ir = 0; ir < mc; ir += mr) {
          const float* ap = apack.data() + (ir / mr) * kc * mr;
          const int m = static_cast<int>(std::min<int64_t>(mr, mc - ir));
          float* crow = C + (ic + ir) * ldc + jc;
          for (int64_t jr = 0; jr < nc; jr += nr) {
            const int n = static_cast<int>(std::min<int64_t>(nr, nc - jr));
            kern.micro(kc, ap, bpack.data() + (jr / nr) * kc * nr, crow + jr, ldc, m, n, alpha, overwrite);
          }
        }
      }
    }
  }
}

void gemm_own(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const DenseB d{transB, B, ldb};
  gemm_own_source(transA, M, N, K, alpha, A, lda, BSource{pack_dense, &d}, beta, C, ldc);
}

void gemm_own_source(bool transA, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                     const BSource& b, float beta, float* C, int64_t ldc) {
  const Kernel& kern = kernel_for_simd();
  const double flops = 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  if (thread_count() == 1 || flops < 2.0e6) {
    gemm_serial_source(kern, transA, M, N, K, alpha, A, lda, b, 0, beta, C, ldc);
    return;
  }
  for_tiles(kern, M, N, [&](int64_t i0, int64_t m, int64_t j0, int64_t n) {
    const float* a = transA ? A + i0 : A + i0 * lda;
    gemm_serial_source(kern, transA, m, n, K, alpha, a, lda, b, j0, beta, C + i0 * ldc + j0, ldc);
  });
}

float bias_prefill(const float* bias, int64_t out, int64_t rows, float* y, bool accumulate) {
  if (!bias) return accumulate ? 1.0f : 0.0f;
  parallel_for(static_cast<size_t>(rows), 64, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; r++) {
      float* yr = y + r * out;
      if (accumulate) {
        for (int64_t j = 0; j < out; j++) yr[j] += bias[j];
      } else {
        std::memcpy(yr, bias, sizeof(float) * out);
      }
    }
  });
  return 1.0f;
}

}  // namespace gemm_detail

void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (gemm_blas::run(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) return;
  gemm_detail::gemm_own(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

const char* gemm_implementation() {
  const char* blas = gemm_blas::name();
  if (blas) return blas;
  return gemm_detail::kernel_for_simd().name;
}

void dense_linear_forward(const float* W, const float* bias, int64_t out, int64_t in, const float* x, int64_t rows,
                          float* y, bool accumulate) {
  if (rows <= 0 || out <= 0) return;
  const float beta = gemm_detail::bias_prefill(bias, out, rows, y, accumulate);
  gemm(false, true, rows, out, in, 1.0f, x, in, W, in, beta, y, out);
}

void dense_linear_input_grad(const float* W, int64_t out, int64_t in, const float* dy, int64_t rows, float* dx,
                             bool accumulate) {
  gemm(false, false, rows, in, out, 1.0f, dy, out, W, in, accumulate ? 1.0f : 0.0f, dx, in);
}

}  // namespace ditty::cpu
