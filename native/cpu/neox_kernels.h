// The neox kernels written once over a vector type V (see neox_portable.cpp / neox_avx2.cpp /
// neox_avx512.cpp, each of which defines V under its own target and then includes this file, so
// everything here is compiled once per ISA with internal linkage; it must include no headers).
//
// V provides: T (the vector), W (lanes), MR x NV (register tile: rows x vectors), zero, set1, load,
// loadn(p, n, fill) / storen(p, v, n) for the first n < W lanes, store, add, sub, mul, div, fma
// (a*b + c), max, min, abs, select_lt(a, b, x, y) (a < b ? x : y), round (to nearest), pow2n (2^n for
// integral n in [-127, 127]), copysign, hsum, hmax. W == 1 is the portable path: it uses libm.

namespace {

using ditty::cpu::Gelu;
using ditty::cpu::neox_detail::AttentionShape;
using ditty::cpu::neox_detail::kBlock;
using ditty::cpu::neox_detail::padded;

inline int64_t lo(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t hi(int64_t a, int64_t b) { return a < b ? b : a; }

// ---------------------------------------------------------------------------------------------
// Vector math (1-3 ulp over the float range; the tests hold each ISA to the libm path).

// Cephes expf: 2^n e^r with |r| <= ln2/2, a degree-6 polynomial for e^r.
template <class V>
typename V::T vexp(typename V::T x) {
  if constexpr (V::W == 1) {
    return std::exp(x);
  } else {
    x = V::min(V::max(x, V::set1(-88.0f)), V::set1(88.0f));
    typename V::T n = V::round(V::mul(x, V::set1(1.44269504088896341f)));
    typename V::T r = V::fma(n, V::set1(-0.693359375f), x);
    r = V::fma(n, V::set1(2.12194440e-4f), r);
    typename V::T p = V::set1(1.9875691500e-4f);
    p = V::fma(p, r, V::set1(1.3981999507e-3f));
    p = V::fma(p, r, V::set1(8.3334519073e-3f));
    p = V::fma(p, r, V::set1(4.1665795894e-2f));
    p = V::fma(p, r, V::set1(1.6666665459e-1f));
    p = V::fma(p, r, V::set1(5.0000001201e-1f));
    p = V::fma(p, V::mul(r, r), V::add(r, V::set1(1.0f)));
    return V::mul(p, V::pow2n(n));  // n = -127 (x near -88) gives 0, the underflow wanted
  }
}

// Cephes tanhf: an odd polynomial below 0.625, else 1 - 2 / (e^{2|x|} + 1).
template <class V>
typename V::T vtanh(typename V::T x) {
  if constexpr (V::W == 1) {
    return std::tanh(x);
  } else {
    typename V::T a = V::abs(x), z = V::mul(x, x);
    typename V::T p = V::set1(-5.70498872745e-3f);
    p = V::fma(p, z, V::set1(2.06390887954e-2f));
    p = V::fma(p, z, V::set1(-5.37397155531e-2f));
    p = V::fma(p, z, V::set1(1.33314422036e-1f));
    p = V::fma(p, z, V::set1(-3.33332819422e-1f));
    typename V::T small = V::fma(V::mul(p, z), x, x);
    typename V::T e = vexp<V>(V::mul(V::min(a, V::set1(44.0f)), V::set1(2.0f)));  // e^88 < FLT_MAX
    typename V::T big = V::sub(V::set1(1.0f), V::div(V::set1(2.0f), V::add(e, V::set1(1.0f))));
    return V::select_lt(a, V::set1(0.625f), small, V::copysign(big, x));
  }
}

// erf: its Taylor series (11 terms, truncation < 1e-8) below |x| = 1; above, 1 - erfc with
// Numerical Recipes' erfc = t exp(-x^2 + P(t)), t = 1 / (1 + |x|/2) (fractional error < 1.2e-7 of
// erfc, which is <= 0.16 there). Measured against double erf: < 2e-7 relative.
template <class V>
typename V::T verf(typename V::T x) {
  if constexpr (V::W == 1) {
    return std::erf(x);
  } else {
    // 2/sqrt(pi) (-1)^n / (n! (2n + 1)), n = 10 .. 0
    static constexpr float taylor[11] = {1.48071928e-08f,  -1.63658447e-07f, 1.64621144e-06f, -1.49256504e-05f,
                                         1.20553330e-04f,  -8.54832702e-04f, 5.22397763e-03f, -2.68661706e-02f,
                                         1.12837917e-01f,  -3.76126389e-01f, 1.12837917e+00f};
    typename V::T a = V::abs(x), z = V::mul(x, x);
    typename V::T p = V::set1(taylor[0]);
    for (int i = 1; i < 11; i++) p = V::fma(p, z, V::set1(taylor[i]));
    typename V::T small = V::mul(p, x);
    static constexpr float nr[10] = {0.17087277f, -0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f,
                                     -0.18628806f, 0.09678418f, 0.37409196f,  1.00002368f,  -1.26551223f};
    typename V::T t = V::div(V::set1(1.0f), V::fma(a, V::set1(0.5f), V::set1(1.0f)));
    typename V::T q = V::set1(nr[0]);
    for (int i = 1; i < 10; i++) q = V::fma(q, t, V::set1(nr[i]));
    typename V::T erfc = V::mul(t, vexp<V>(V::sub(q, z)));
    typename V::T big = V::copysign(V::sub(V::set1(1.0f), erfc), x);
    return V::select_lt(a, V::set1(1.0f), small, big);
  }
}

// ---------------------------------------------------------------------------------------------
// GELU, in src/engine/fused.ts's operation order (each product and sum a float32 rounding, as the
// tfjs ops are).

constexpr float kSqrtHalf = 0.70710678118654752f;  // Math.SQRT1_2
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
constexpr float kGeluA = 0.044715f;
constexpr float kGeluA3 = static_cast<float>(3 * 0.044715);

template <class V>
typename V::T gelu_value(typename V::T x, Gelu kind, float c) {
  using T = typename V::T;
  T half_x = V::mul(x, V::set1(0.5f));
  if (kind == Gelu::Erf) return V::mul(half_x, V::add(verf<V>(V::mul(x, V::set1(kSqrtHalf))), V::set1(1.0f)));
  T inner = V::mul(V::mul(x, V::set1(c)), V::add(V::mul(V::mul(x, x), V::set1(kGeluA)), V::set1(1.0f)));
  return V::mul(half_x, V::add(vtanh<V>(inner), V::set1(1.0f)));
}

template <class V>
typename V::T gelu_grad(typename V::T x, typename V::T dy, Gelu kind, float c) {
  using T = typename V::T;
  T x2 = V::mul(x, x), d;
  if (kind == Gelu::Erf) {
    // 0.5 (1 + erf(x/sqrt2)) + x exp(-x^2/2) / sqrt(2 pi)
    T e = verf<V>(V::mul(x, V::set1(kSqrtHalf)));
    T density = V::mul(vexp<V>(V::mul(x2, V::set1(-0.5f))), V::set1(kInvSqrt2Pi));
    d = V::add(V::mul(V::add(e, V::set1(1.0f)), V::set1(0.5f)), V::mul(x, density));
  } else {
    // 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2)
    T t = vtanh<V>(V::mul(V::mul(x, V::set1(c)), V::add(V::mul(x2, V::set1(kGeluA)), V::set1(1.0f))));
    T d_inner = V::mul(V::add(V::mul(x2, V::set1(kGeluA3)), V::set1(1.0f)), V::set1(c));
    T slope = V::mul(V::mul(V::mul(x, V::set1(0.5f)), V::sub(V::set1(1.0f), V::mul(t, t))), d_inner);
    d = V::add(V::mul(V::add(t, V::set1(1.0f)), V::set1(0.5f)), slope);
  }
  return V::mul(dy, d);
}

inline float gelu_constant(Gelu kind) {
  return kind == Gelu::Fast ? 0.7978845608f : static_cast<float>(0.79788456080286536);  // sqrt(2/pi)
}

template <class V>
void gelu_forward_impl(const float* x, float* out, int64_t n, Gelu kind) {
  float c = gelu_constant(kind);
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) V::store(out + i, gelu_value<V>(V::load(x + i), kind, c));
  if (i < n) V::storen(out + i, gelu_value<V>(V::loadn(x + i, static_cast<int>(n - i), 0.0f), kind, c), static_cast<int>(n - i));
}

template <class V>
void gelu_backward_impl(const float* x, const float* dy, float* dx, int64_t n, Gelu kind) {
  float c = gelu_constant(kind);
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) V::store(dx + i, gelu_grad<V>(V::load(x + i), V::load(dy + i), kind, c));
  if (i < n) {
    int r = static_cast<int>(n - i);
    V::storen(dx + i, gelu_grad<V>(V::loadn(x + i, r, 0.0f), V::loadn(dy + i, r, 0.0f), kind, c), r);
  }
}

// ---------------------------------------------------------------------------------------------
// Attention tiles. Two register-tiled products cover forward and backward:
//   nt: C[i][j] = sum_c A[i][c] Bt[c][j]      (scores: A = queries, Bt = keys packed [d x S])
//   nn: C[i][c] (+)= alpha sum_k A(i,k) B[k][c]   (P V, dS K, and with A transposed P^T dO, dS^T Q)
// Every output element is one accumulator summed over its k in increasing order: the result does
// not depend on how blocks are spread over threads.

// C rows r < MR, columns [0, NV*W): Bt and C are padded so whole vectors are always in bounds.
template <class V, int MR, int NV>
void nt_tile(const float* A, int64_t lda, const float* Bt, int64_t ldb, int64_t K, float* C, int64_t ldc) {
  typename V::T acc[MR][NV];
  for (int r = 0; r < MR; r++)
    for (int v = 0; v < NV; v++) acc[r][v] = V::zero();
  for (int64_t c = 0; c < K; c++) {
    typename V::T b[NV];
    for (int v = 0; v < NV; v++) b[v] = V::load(Bt + c * ldb + v * V::W);
    for (int r = 0; r < MR; r++) {
      typename V::T a = V::set1(A[r * lda + c]);
      for (int v = 0; v < NV; v++) acc[r][v] = V::fma(a, b[v], acc[r][v]);
    }
  }
  for (int r = 0; r < MR; r++)
    for (int v = 0; v < NV; v++) V::store(C + r * ldc + v * V::W, acc[r][v]);
}

template <class V, int MR, int NV>
void nt_cols(int nv, const float* A, int64_t lda, const float* Bt, int64_t ldb, int64_t K, float* C, int64_t ldc) {
  if constexpr (NV >= 1) {
    if (nv == NV) return nt_tile<V, MR, NV>(A, lda, Bt, ldb, K, C, ldc);
    nt_cols<V, MR, NV - 1>(nv, A, lda, Bt, ldb, K, C, ldc);
  }
}

template <class V, int MR>
void nt_rows(int rows, int nv, const float* A, int64_t lda, const float* Bt, int64_t ldb, int64_t K, float* C, int64_t ldc) {
  if constexpr (MR >= 1) {
    if (rows == MR) return nt_cols<V, MR, V::NV>(nv, A, lda, Bt, ldb, K, C, ldc);
    nt_rows<V, MR - 1>(rows, nv, A, lda, Bt, ldb, K, C, ldc);
  }
}

// Scores of query rows [0, m) against packed key columns [0, cols) where row i sees columns
// < first + i + 1 (the causal limit): each register tile stops at the last column its rows can see.
template <class V>
void scores(const float* A, int64_t lda, int64_t m, const float* Bt, int64_t ldb, int64_t K, int64_t first, int64_t cols,
            float* C, int64_t ldc) {
  for (int64_t i0 = 0; i0 < m; i0 += V::MR) {
    int rows = static_cast<int>(lo(V::MR, m - i0));
    int64_t nvec = (lo(cols, first + i0 + rows) + V::W - 1) / V::W;
    for (int64_t jv = 0; jv < nvec; jv += V::NV) {
      int nv = static_cast<int>(lo(V::NV, nvec - jv));
      nt_rows<V, V::MR>(rows, nv, A + i0 * lda, lda, Bt + jv * V::W, ldb, K, C + i0 * ldc + jv * V::W, ldc);
    }
  }
}

// C rows r < MR, columns [0, NV*W) of which the last vector holds `last` lanes when TAIL.
template <class V, int MR, int NV, bool TAIL>
void nn_tile(const float* A, int64_t ars, int64_t acs, const float* B, int64_t ldb, int64_t k0, int64_t k1, float* C,
             int64_t ldc, float alpha, bool accumulate, int last) {
  typename V::T acc[MR][NV];
  for (int r = 0; r < MR; r++)
    for (int v = 0; v < NV; v++) acc[r][v] = V::zero();
  for (int64_t k = k0; k < k1; k++) {
    typename V::T b[NV];
    for (int v = 0; v < NV; v++) {
      b[v] = TAIL && v == NV - 1 ? V::loadn(B + k * ldb + v * V::W, last, 0.0f) : V::load(B + k * ldb + v * V::W);
    }
    for (int r = 0; r < MR; r++) {
      typename V::T a = V::set1(A[r * ars + k * acs]);
      for (int v = 0; v < NV; v++) acc[r][v] = V::fma(a, b[v], acc[r][v]);
    }
  }
  typename V::T s = V::set1(alpha);
  for (int r = 0; r < MR; r++) {
    for (int v = 0; v < NV; v++) {
      float* c = C + r * ldc + v * V::W;
      bool partial = TAIL && v == NV - 1;
      typename V::T y = V::mul(acc[r][v], s);
      if (accumulate) y = V::add(partial ? V::loadn(c, last, 0.0f) : V::load(c), y);
      if (partial) V::storen(c, y, last);
      else V::store(c, y);
    }
  }
}

template <class V, int MR, int NV>
void nn_cols(int nv, bool tail, const float* A, int64_t ars, int64_t acs, const float* B, int64_t ldb, int64_t k0,
             int64_t k1, float* C, int64_t ldc, float alpha, bool accumulate, int last) {
  if constexpr (NV >= 1) {
    if (nv == NV) {
      if (tail) return nn_tile<V, MR, NV, true>(A, ars, acs, B, ldb, k0, k1, C, ldc, alpha, accumulate, last);
      return nn_tile<V, MR, NV, false>(A, ars, acs, B, ldb, k0, k1, C, ldc, alpha, accumulate, last);
    }
    nn_cols<V, MR, NV - 1>(nv, tail, A, ars, acs, B, ldb, k0, k1, C, ldc, alpha, accumulate, last);
  }
}

template <class V, int MR>
void nn_rows(int rows, int nv, bool tail, const float* A, int64_t ars, int64_t acs, const float* B, int64_t ldb, int64_t k0,
             int64_t k1, float* C, int64_t ldc, float alpha, bool accumulate, int last) {
  if constexpr (MR >= 1) {
    if (rows == MR) return nn_cols<V, MR, V::NV>(nv, tail, A, ars, acs, B, ldb, k0, k1, C, ldc, alpha, accumulate, last);
    nn_rows<V, MR - 1>(rows, nv, tail, A, ars, acs, B, ldb, k0, k1, C, ldc, alpha, accumulate, last);
  }
}

// C [m x d] (+)= alpha A B with A(i,k) = A[i*ars + k*acs], B [K x d] (row stride ldb); row tile
// i0 sums k over [k_begin(i0), k_end(i0)): the rest of its A entries are known zeros (causal).
template <class V, class KBegin, class KEnd>
void product(const float* A, int64_t ars, int64_t acs, int64_t m, const float* B, int64_t ldb, int64_t d, float* C,
             int64_t ldc, float alpha, bool accumulate, KBegin k_begin, KEnd k_end) {
  int64_t nvec = (d + V::W - 1) / V::W;
  int last = static_cast<int>(d - (nvec - 1) * V::W);
  for (int64_t i0 = 0; i0 < m; i0 += V::MR) {
    int rows = static_cast<int>(lo(V::MR, m - i0));
    int64_t k0 = k_begin(i0), k1 = k_end(i0, rows);
    for (int64_t cv = 0; cv < nvec; cv += V::NV) {
      int nv = static_cast<int>(lo(V::NV, nvec - cv));
      bool tail = cv + nv == nvec && last != V::W;
      nn_rows<V, V::MR>(rows, nv, tail, A + i0 * ars, ars, acs, B + cv * V::W, ldb, k0, k1, C + i0 * ldc + cv * V::W, ldc,
                        alpha, accumulate, last);
    }
  }
}

// Kt[c][j] = K[j][c] for j < n, zero for j in [n, padded(n)).
inline void pack_transposed(const float* K, int64_t n, int64_t d, float* Kt) {
  int64_t np = padded(n);
  for (int64_t j0 = 0; j0 < n; j0 += 16) {
    int64_t j1 = lo(n, j0 + 16);
    for (int64_t c = 0; c < d; c++)
      for (int64_t j = j0; j < j1; j++) Kt[c * np + j] = K[j * d + c];
  }
  for (int64_t c = 0; c < d; c++)
    for (int64_t j = n; j < np; j++) Kt[c * np + j] = 0.0f;
}

template <class V>
float dot(const float* a, const float* b, int64_t n) {
  typename V::T acc = V::zero();
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) acc = V::fma(V::load(a + i), V::load(b + i), acc);
  if (i < n) {
    int r = static_cast<int>(n - i);
    acc = V::fma(V::loadn(a + i, r, 0.0f), V::loadn(b + i, r, 0.0f), acc);
  }
  return V::hsum(acc);
}

// A score row of `len` visible keys -> softmax probabilities, in place, zeros up to `np`; returns
// the row's log-sum-exp. Same steps as tf.softmax on (q k^T) scale + mask: max, exp(s - max), / sum.
template <class V>
float softmax_row(float* row, int64_t len, int64_t np, float scale) {
  using T = typename V::T;
  T sc = V::set1(scale), mx = V::set1(-INFINITY);
  int64_t j = 0;
  for (; j + V::W <= len; j += V::W) {
    T s = V::mul(V::load(row + j), sc);
    V::store(row + j, s);
    mx = V::max(mx, s);
  }
  // the tail's missing lanes load as -inf: they drop out of the max and exp to 0
  int r = static_cast<int>(len - j);
  if (r > 0) {
    T s = V::mul(V::loadn(row + j, r, -INFINITY), sc);
    V::storen(row + j, s, r);
    mx = V::max(mx, s);
  }
  float m = V::hmax(mx);
  T mv = V::set1(m), sum = V::zero();
  for (j = 0; j + V::W <= len; j += V::W) {
    T e = vexp<V>(V::sub(V::load(row + j), mv));
    V::store(row + j, e);
    sum = V::add(sum, e);
  }
  if (r > 0) {
    T e = vexp<V>(V::sub(V::loadn(row + j, r, -INFINITY), mv));
    V::storen(row + j, e, r);
    sum = V::add(sum, e);
  }
  float total = V::hsum(sum);
  T tv = V::set1(total);
  for (j = 0; j + V::W <= len; j += V::W) V::store(row + j, V::div(V::load(row + j), tv));
  if (r > 0) V::storen(row + j, V::div(V::loadn(row + j, r, 0.0f), tv), r);
  for (j = len; j < np; j++) row[j] = 0.0f;
  return m + std::log(total);
}

template <class V>
void attention_forward_block(const AttentionShape& a, int64_t bh, int64_t t0, int64_t t1, float* out, float* lse,
                             float* scratch) {
  const int64_t d = a.d, T = a.T, S = a.S, H = a.H, b = bh / H, h = bh % H;
  const int64_t m = t1 - t0, past = S - T, n = past + t1, np = padded(n);
  const float* Q = a.q + (bh * T + t0) * d;
  const float* K = a.k + bh * S * d;
  const float* Vv = a.v + bh * S * d;
  float* Kt = scratch;
  float* P = scratch + d * np;
  if (m == 1) {
    // one query (decoding after a KV cache): plain dot products beat packing the keys first
    for (int64_t j = 0; j < n; j++) P[j] = dot<V>(Q, K + j * d, d);
  } else {
    pack_transposed(K, n, d, Kt);
    scores<V>(Q, d, m, Kt, np, d, past + t0, n, P, np);
  }
  for (int64_t i = 0; i < m; i++) {
    float l = softmax_row<V>(P + i * np, past + t0 + i + 1, np, a.scale);
    if (lse) lse[bh * T + t0 + i] = l;
  }
  const int64_t ldo = H * d;
  product<V>(P, np, 1, m, Vv, d, d, out + ((b * T + t0) * H + h) * d, ldo, 1.0f, false, [](int64_t) { return int64_t{0}; },
             [&](int64_t i0, int rows) { return lo(n, past + t0 + i0 + rows); });
}

// One head's tensors for backward (S = T).
struct Head {
  const float *Q, *K, *V, *O, *dO, *L;  // O, dO rows at stride ldo (heads merged)
  float *dQ, *dK, *dV;
  int64_t T, d, ldo;
  float scale;
};

inline Head head_of(const AttentionShape& a, int64_t bh, const float* dout, const float* out, const float* lse, float* dq,
                    float* dk, float* dv) {
  const int64_t d = a.d, T = a.T, H = a.H, b = bh / H, h = bh % H;
  const int64_t o = (b * T * H + h) * d, x = bh * T * d;
  return {a.q + x, a.k + x, a.v + x, out + o, dout + o, lse + bh * T, dq + x, dk + x, dv + x, T, d, H * d, a.scale};
}

// Query rows [t0, t0 + m) against the keys whose packed columns Kt/Vt (row stride ldt) start at
// key c0 (a multiple of 16) and run `cols` keys: P = exp(s scale - lse), dS = P (dO v - D) with
// D = rowsum(dO * O); rows of stride ld, zero past each query's last visible key. Every element is
// computed the same way (and in the same vector lane) whichever c0 the caller starts from, so the
// per-head and the split backward produce the same bits.
template <class V>
void probabilities(const Head& g, int64_t t0, int64_t m, const float* Kt, const float* Vt, int64_t ldt, int64_t c0,
                   int64_t cols, float* P, float* dS, int64_t ld) {
  using Tv = typename V::T;
  scores<V>(g.Q + t0 * g.d, g.d, m, Kt, ldt, g.d, t0 - c0, cols, P, ld);
  scores<V>(g.dO + t0 * g.ldo, g.ldo, m, Vt, ldt, g.d, t0 - c0, cols, dS, ld);
  const Tv sc = V::set1(g.scale);
  for (int64_t i = 0; i < m; i++) {
    float* p = P + i * ld;
    float* ds = dS + i * ld;
    const int64_t len = lo(cols, t0 + i + 1 - c0);  // visible keys of this row in the window
    const float D = dot<V>(g.dO + (t0 + i) * g.ldo, g.O + (t0 + i) * g.ldo, g.d);
    Tv l = V::set1(g.L[t0 + i]), Di = V::set1(D);
    int64_t j = 0;
    for (; j + V::W <= len; j += V::W) {
      Tv pv = vexp<V>(V::sub(V::mul(V::load(p + j), sc), l));
      V::store(p + j, pv);
      V::store(ds + j, V::mul(pv, V::sub(V::load(ds + j), Di)));
    }
    if (j < len) {
      int r = static_cast<int>(len - j);
      Tv pv = vexp<V>(V::sub(V::mul(V::loadn(p + j, r, 0.0f), sc), l));
      V::storen(p + j, pv, r);
      V::storen(ds + j, V::mul(pv, V::sub(V::loadn(ds + j, r, 0.0f), Di)), r);
    }
    for (j = hi(len, 0); j < padded(cols); j++) p[j] = ds[j] = 0.0f;
  }
}

// dQ rows [t0, t0 + m) = (dS K) scale over keys [0, t0 + m).
template <class V>
void query_gradient(const Head& g, int64_t t0, int64_t m, const float* dS, int64_t ld) {
  product<V>(dS, ld, 1, m, g.K, g.d, g.d, g.dQ + t0 * g.d, g.d, g.scale, false, [](int64_t) { return int64_t{0}; },
             [&](int64_t i0, int rows) { return t0 + i0 + rows; });
}

// dV += P^T dO and dK += dS^T Q (unscaled) for keys [c0, c0 + cols) from query rows [t0, t0 + m):
// key j gets queries t >= j only.
template <class V>
void key_gradients(const Head& g, int64_t t0, int64_t m, int64_t c0, int64_t cols, const float* P, const float* dS, int64_t ld) {
  auto first_query = [&](int64_t j) { return hi(0, c0 + j - t0); };
  auto all_queries = [&](int64_t, int) { return m; };
  product<V>(P, 1, ld, cols, g.dO + t0 * g.ldo, g.ldo, g.d, g.dV + c0 * g.d, g.d, 1.0f, true, first_query, all_queries);
  product<V>(dS, 1, ld, cols, g.Q + t0 * g.d, g.d, g.d, g.dK + c0 * g.d, g.d, 1.0f, true, first_query, all_queries);
}

// All of one head's gradients on one thread: query blocks in order, each adding to dK and dV.
template <class V>
void attention_backward_head(const AttentionShape& a, int64_t bh, const float* dout, const float* out, const float* lse,
                             float* dq, float* dk, float* dv, float* scratch) {
  const Head g = head_of(a, bh, dout, out, lse, dq, dk, dv);
  const int64_t T = g.T, d = g.d, np = padded(T);
  float* Kt = scratch;
  float* Vt = Kt + d * np;
  float* P = Vt + d * np;
  float* dS = P + kBlock * np;
  pack_transposed(g.K, T, d, Kt);
  pack_transposed(g.V, T, d, Vt);
  for (int64_t i = 0; i < T * d; i++) g.dK[i] = g.dV[i] = 0.0f;
  for (int64_t t0 = 0; t0 < T; t0 += kBlock) {
    const int64_t m = lo(T, t0 + kBlock) - t0;
    probabilities<V>(g, t0, m, Kt, Vt, np, 0, t0 + m, P, dS, np);
    query_gradient<V>(g, t0, m, dS, np);
    key_gradients<V>(g, t0, m, 0, t0 + m, P, dS, np);
  }
  for (int64_t i = 0; i < T * d; i++) g.dK[i] *= g.scale;
}

// The same gradients split for more threads than heads (recomputing P and dS twice): dK, dV of
// key block kb (from query blocks kb.. in order, as the per-head loop adds them), or dQ of query
// block kb. The same bits as attention_backward_head.
template <class V>
void attention_backward_block(const AttentionShape& a, int64_t bh, int64_t kb, bool keys, const float* dout,
                              const float* out, const float* lse, float* dq, float* dk, float* dv, float* scratch) {
  const Head g = head_of(a, bh, dout, out, lse, dq, dk, dv);
  const int64_t T = g.T, d = g.d, c0 = kb * kBlock;
  if (!keys) {
    const int64_t m = lo(T, c0 + kBlock) - c0, np = padded(c0 + m);
    float* Kt = scratch;
    float* Vt = Kt + d * np;
    float* P = Vt + d * np;
    float* dS = P + kBlock * np;
    pack_transposed(g.K, c0 + m, d, Kt);
    pack_transposed(g.V, c0 + m, d, Vt);
    probabilities<V>(g, c0, m, Kt, Vt, np, 0, c0 + m, P, dS, np);
    query_gradient<V>(g, c0, m, dS, np);
    return;
  }
  const int64_t cols = lo(T, c0 + kBlock) - c0, np = padded(cols);
  float* Kt = scratch;
  float* Vt = Kt + d * np;
  float* P = Vt + d * np;
  float* dS = P + kBlock * np;
  pack_transposed(g.K + c0 * d, cols, d, Kt);
  pack_transposed(g.V + c0 * d, cols, d, Vt);
  for (int64_t i = c0 * d; i < (c0 + cols) * d; i++) g.dK[i] = g.dV[i] = 0.0f;
  for (int64_t t0 = c0; t0 < T; t0 += kBlock) {
    const int64_t m = lo(T, t0 + kBlock) - t0;
    probabilities<V>(g, t0, m, Kt, Vt, np, c0, cols, P, dS, np);
    key_gradients<V>(g, t0, m, c0, cols, P, dS, np);
  }
  for (int64_t i = c0 * d; i < (c0 + cols) * d; i++) g.dK[i] *= g.scale;
}

template <class V>
constexpr ditty::cpu::neox_detail::Kernels kernels() {
  return {attention_forward_block<V>, attention_backward_head<V>, attention_backward_block<V>, gelu_forward_impl<V>,
          gelu_backward_impl<V>};
}

}  // namespace
