// The optimizer step, the gradient sum of squares and global-norm clipping (ditty/cuda/common.h),
// the same bits as native/cpu/adamw.cpp.
#include <cmath>

#include "ditty/adamw_consts.h"
#include "ditty/cuda/common.h"
#include "device_helpers.cuh"

namespace ditty::cuda {
namespace {
using namespace kdetail;

// One element, one float operation per line in the CPU's order (no FMA).
__device__ __forceinline__ void adamw_one(float& p, float g, float& m, float& v, const AdamwConsts& k) {
  m = add_rn(mul_rn(m, k.b1), mul_rn(g, k.one_minus_b1));
  v = add_rn(mul_rn(v, k.b2), mul_rn(mul_rn(g, g), k.one_minus_b2));
  if (k.decays) p = mul_rn(p, k.decay);
  const float denom = add_rn(div_rn(sqrt_rn(v), k.bc2_sqrt), k.eps);
  p = sub_rn(p, mul_rn(div_rn(m, denom), k.step_size));
}

__device__ __forceinline__ bool gate_open(const double* gate) { return !gate || std::isfinite(*gate); }

__global__ void __launch_bounds__(kThreads) adamw_kernel(float* p, const float* g, float* m, float* v, int64_t n,
                                                          AdamwConsts k, const double* gate, bool vec) {
  if (!gate_open(gate)) return;
  for_each_value(
      n, vec,
      [&](int64_t u) {
        F8 pv = load8(p + 8 * u), mv = load8(m + 8 * u), vv = load8(v + 8 * u);
        const F8 gv = load8(g + 8 * u);
        for (int j = 0; j < 8; j++) adamw_one(pv.v[j], gv.v[j], mv.v[j], vv.v[j], k);
        store8(m + 8 * u, mv);
        store8(v + 8 * u, vv);
        store8(p + 8 * u, pv);
      },
      [&](int64_t i) {
        float pi = p[i], mi = m[i], vi = v[i];
        adamw_one(pi, g[i], mi, vi, k);
        m[i] = mi;
        v[i] = vi;
        p[i] = pi;
      });
}

// ditty::cpu::sum_squares' blocking (ditty/adamw_consts.h): kSumSquaresBlock values per block;
// within a block lane j (0..15) sums x[i]^2 for i = j (mod 16) in order, then the fixed tree of
// ditty::cpu::simd::tree16 adds the lanes; the block sums are added in order.
constexpr int kThreadsPerSumBlock = 4;  // each holds 4 lanes (one 16-byte load per step)

__global__ void __launch_bounds__(kThreads) sum_squares_blocks_kernel(const float* x, int64_t n, int64_t blocks,
                                                                       double* partial, bool vec) {
  const int q = static_cast<int>(threadIdx.x % kThreadsPerSumBlock);
  const int64_t per_round = global_threads() / kThreadsPerSumBlock;
  // every thread runs the same number of rounds: the shuffles below need the whole warp
  const int64_t rounds = (blocks + per_round - 1) / per_round;
  for (int64_t round = 0; round < rounds; round++) {
    const int64_t b = round * per_round + global_thread() / kThreadsPerSumBlock;
    double l[4] = {0.0, 0.0, 0.0, 0.0};
    if (b < blocks) {
      const float* xb = x + b * kSumSquaresBlock;
      const int64_t len = n - b * kSumSquaresBlock < kSumSquaresBlock ? n - b * kSumSquaresBlock : kSumSquaresBlock;
      const int64_t full = vec ? len / 16 : 0;
      for (int64_t s = 0; s < full; s++) {
        const Raw16 r = load16(xb + 16 * s + 4 * q);
        for (int j = 0; j < 4; j++) {
          const double d = static_cast<double>(__builtin_bit_cast(float, r.w[j]));
          l[j] = dadd_rn(l[j], dmul_rn(d, d));
        }
      }
      for (int64_t i = 16 * full + 4 * q; i < len; i += 16) {
        for (int j = 0; j < 4 && i + j < len; j++) {
          const double d = static_cast<double>(xb[i + j]);
          l[j] = dadd_rn(l[j], dmul_rn(d, d));
        }
      }
    }
    // tree16: h[i] = l[i] + l[i+8] (threads 0, 1 take threads 2, 3), q[i] = h[i] + h[i+4] (thread 0
    // takes thread 1), then (q0 + q2) + (q1 + q3)
    for (int j = 0; j < 4; j++) l[j] = dadd_rn(l[j], __shfl_down_sync(0xffffffffu, l[j], 2, kThreadsPerSumBlock));
    for (int j = 0; j < 4; j++) l[j] = dadd_rn(l[j], __shfl_down_sync(0xffffffffu, l[j], 1, kThreadsPerSumBlock));
    if (q == 0 && b < blocks) partial[b] = dadd_rn(dadd_rn(l[0], l[2]), dadd_rn(l[1], l[3]));
  }
}

__global__ void __launch_bounds__(kThreads) sum_in_order_kernel(const double* partial, int64_t blocks, double* out) {
  DITTY_SHARED(double, tile, [2][kInOrderTile]);
  const double total = in_order_sum(partial, blocks, tile);
  if (threadIdx.x == 0) *out = total;
}

__global__ void __launch_bounds__(kThreads) clip_kernel(float* g, int64_t n, const double* sum_sq, double max_norm,
                                                         bool vec) {
  const double norm = dsqrt_rn(*sum_sq);
  if (!std::isfinite(norm) || !(max_norm > 0.0)) return;
  const double coef = ddiv_rn(max_norm, dadd_rn(norm, 1e-6));
  if (!(coef < 1.0)) return;
  const float s = static_cast<float>(coef);
  for_each_value(
      n, vec,
      [&](int64_t u) {
        F8 x = load8(g + 8 * u);
        for (int j = 0; j < 8; j++) x.v[j] = mul_rn(x.v[j], s);
        store8(g + 8 * u, x);
      },
      [&](int64_t i) { g[i] = mul_rn(g[i], s); });
}

}  // namespace

void adamw_step(float* p, const float* g, float* m, float* v, int64_t n, double lr, double beta1, double beta2,
                double eps, double weight_decay, int64_t step, const double* gate, cudaStream_t stream) {
  if (n <= 0) return;
  const AdamwConsts k = adamw_consts(lr, beta1, beta2, eps, weight_decay, step);
  const bool vec = aligned16(p) && aligned16(g) && aligned16(m) && aligned16(v);
  launch(adamw_kernel, dim3(blocks_for_units(n, vec)), dim3(kThreads), 0, stream, p, g, m, v, n, k, gate, vec);
}

int64_t sum_squares_scratch_doubles(int64_t n) { return n > 0 ? (n + kSumSquaresBlock - 1) / kSumSquaresBlock : 0; }

void sum_squares(const float* x, int64_t n, double* out, double* scratch, cudaStream_t stream) {
  const int64_t blocks = sum_squares_scratch_doubles(n);
  if (blocks > 0) {
    launch(sum_squares_blocks_kernel, dim3(blocks_for(blocks * kThreadsPerSumBlock)), dim3(kThreads), 0, stream, x, n,
           blocks, scratch, aligned16(x));
  }
  launch(sum_in_order_kernel, dim3(1), dim3(kThreads), 0, stream, static_cast<const double*>(scratch), blocks, out);
}

void clip_by_norm(float* g, int64_t n, const double* sum_sq, double max_norm, cudaStream_t stream) {
  if (n <= 0) return;
  const bool vec = aligned16(g);
  launch(clip_kernel, dim3(blocks_for_units(n, vec)), dim3(kThreads), 0, stream, g, n, sum_sq, max_norm, vec);
}

}  // namespace ditty::cuda
