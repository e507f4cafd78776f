// RWKV-4 WKV forward and backward (ditty/cuda/rwkv.h) in the stable (aa, bb, pp) form of the CPU
// twin native/cpu/rwkv_wkv.inc: one thread per (batch row, channel), the same operations in the
// same order per step. Each stable "weighted sum of two terms" costs one exp: of x, y one of
// e^(x - max), e^(y - max) is 1 and the other e^-|x - y|.
#include <algorithm>

#include "ditty/cuda/runtime.h"

#include "ditty/cuda/rwkv.h"

namespace ditty::cuda {
namespace {

constexpr int kThreads = 32;
// Positions whose loads are in flight while the current ones are consumed (register double buffer:
// 2 x 2 x 8 floats forward, 2 x 6 x 4 backward).
constexpr int kAhead = 8;
constexpr int kBackAhead = 4;

__device__ __forceinline__ float ld(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float ld(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void st(float* p, int64_t i, float x) { p[i] = x; }
__device__ __forceinline__ void st(__nv_bfloat16* p, int64_t i, float x) { p[i] = __float2bfloat16(x); }

struct TwoTerm {
  float big;  // max(x, y)
  float ex;   // e^(x - max)
  float ey;   // e^(y - max)
};
__device__ __forceinline__ TwoTerm two_term(float x, float y) {
  const float d = x - y, e = expf(-fabsf(d));
  return {fmaxf(x, y), d >= 0.0f ? 1.0f : e, d >= 0.0f ? e : 1.0f};
}

// y_t = num / z from the state before t: (e^pp aa + e^(u+k) v) / (e^pp bb + e^(u+k)) = num/z with
// the common factor e^q taken out; e2 = e^(u+k-q).
struct Out {
  float num, z, q, e2;
};
__device__ __forceinline__ Out output(float u, float k, float v, float aa, float bb, float pp) {
  const TwoTerm o = two_term(pp, u + k);
  return {fmaf(o.ex, aa, o.ey * v), fmaf(o.ex, bb, o.ey), o.big, o.ey};
}
// a <- e^w a + e^k v, b <- e^w b + e^k
__device__ __forceinline__ void advance(float w, float k, float v, float& aa, float& bb, float& pp) {
  const TwoTerm n = two_term(pp + w, k);
  aa = fmaf(n.ex, aa, n.ey * v);
  bb = fmaf(n.ex, bb, n.ey);
  pp = n.big;
}

// Per thread: the channel's base offset (b*T*C + c) and its t stride C.
template <class S>
__device__ __forceinline__ void load_ahead(const S* k, const S* v, int64_t base, int64_t C, int64_t t0, int64_t T,
                                           float (&kb)[kAhead], float (&vb)[kAhead]) {
DITTY_UNROLL
  for (int i = 0; i < kAhead; i++) {
    const bool in = t0 + i < T;
    kb[i] = in ? ld(k, base + (t0 + i) * C) : 0.0f;
    vb[i] = in ? ld(v, base + (t0 + i) * C) : 0.0f;
  }
}

// The forward sweep over one channel's positions t = 0 .. T-1: body(t, k_t, v_t) in order, with the
// next kAhead positions' loads in flight while the current ones are consumed.
template <class S, class Body>
__device__ __forceinline__ void forward_sweep(const S* k, const S* v, int64_t base, int64_t C, int64_t T,
                                              const Body& body) {
  float kn[kAhead], vn[kAhead];
  load_ahead(k, v, base, C, 0, T, kn, vn);
  for (int64_t t0 = 0; t0 < T; t0 += kAhead) {
    float kc[kAhead], vc[kAhead];
DITTY_UNROLL
    for (int i = 0; i < kAhead; i++) {
      kc[i] = kn[i];
      vc[i] = vn[i];
    }
    if (t0 + kAhead < T) load_ahead(k, v, base, C, t0 + kAhead, T, kn, vn);
DITTY_UNROLL
    for (int i = 0; i < kAhead; i++) {
      if (t0 + i < T) body(t0 + i, kc[i], vc[i]);
    }
  }
}

template <class S>
__global__ void __launch_bounds__(kThreads) wkv_forward_kernel(const float* decay, const float* first, const S* k,
                                                                const S* v, int64_t B, int64_t T, int64_t C, S* y,
                                                                float* state) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x, BC = B * C;
  if (idx >= BC) return;
  const int64_t c = idx % C, base = idx / C * T * C + c;
  const float w = -expf(decay[c]), u = first[c];
  float aa = 0.0f, bb = 0.0f, pp = -1e38f;
  if (state) {
    aa = state[idx];
    bb = state[BC + idx];
    pp = state[2 * BC + idx];
  }
  forward_sweep(k, v, base, C, T, [&](int64_t t, float kt, float vt) {
    const Out o = output(u, kt, vt, aa, bb, pp);
    st(y, base + t * C, o.num / o.z);
    advance(w, kt, vt, aa, bb, pp);
  });
  if (state) {
    state[idx] = aa;
    state[BC + idx] = bb;
    state[2 * BC + idx] = pp;
  }
}

// The reverse sweep's inputs at one position.
struct Back {
  float k, v, g, aa, bb, pp;
};

template <class S>
__device__ __forceinline__ void load_back(const S* k, const S* v, const S* dy, const float* states, int64_t plane,
                                          int64_t base, int64_t C, int64_t t1, Back (&buf)[kBackAhead]) {
DITTY_UNROLL
  for (int i = 0; i < kBackAhead; i++) {
    const int64_t t = t1 - i;
    if (t >= 0) {
      const int64_t j = base + t * C;
      buf[i] = {ld(k, j), ld(v, j), ld(dy, j), states[j], states[plane + j], states[2 * plane + j]};
    } else {
      buf[i] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    }
  }
}

// dk, dv from an empty start state (derivation in src/engine/wkv.ts). The forward sweep stores the
// state before each position in `states` [3][B*T*C]; the reverse sweep carries R, S (sums over later
// positions) as rr e^rp, ss e^rp so nothing overflows for large k.
template <class S>
__global__ void __launch_bounds__(kThreads) wkv_backward_kernel(const float* decay, const float* first, const S* k,
                                                                 const S* v, const S* dy, int64_t B, int64_t T,
                                                                 int64_t C, S* dk, S* dv, float* states) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= B * C) return;
  const int64_t c = idx % C, base = idx / C * T * C + c, plane = B * T * C;
  const float w = -expf(decay[c]), u = first[c];
  {
    float aa = 0.0f, bb = 0.0f, pp = -1e38f;
    forward_sweep(k, v, base, C, T, [&](int64_t t, float kt, float vt) {
      const int64_t j = base + t * C;
      states[j] = aa;
      states[plane + j] = bb;
      states[2 * plane + j] = pp;
      advance(w, kt, vt, aa, bb, pp);
    });
  }
  float rr = 0.0f, ss = 0.0f, rp = -1e38f;
  Back next[kBackAhead];
  load_back(k, v, dy, states, plane, base, C, T - 1, next);
  for (int64_t t1 = T - 1; t1 >= 0; t1 -= kBackAhead) {
    Back cur[kBackAhead];
DITTY_UNROLL
    for (int i = 0; i < kBackAhead; i++) cur[i] = next[i];
    if (t1 - kBackAhead >= 0) load_back(k, v, dy, states, plane, base, C, t1 - kBackAhead, next);
DITTY_UNROLL
    for (int i = 0; i < kBackAhead; i++) {
      if (t1 - i >= 0) {
        const Back& p = cur[i];
        const Out o = output(u, p.k, p.v, p.aa, p.bb, p.pp);
        const float rz = 1.0f / o.z, yt = o.num * rz;
        const float og = p.g * (o.e2 * rz);  // g_t e^(u+k_t) / Z_t
        const float h = expf(p.k + rp);      // e^k_t R_t = h rr
        const float hr = h * rr;
        const int64_t j = base + (t1 - i) * C;
        st(dv, j, og + hr);
        st(dk, j, fmaf(og, p.v - yt, p.v * hr - h * ss));
        // R_{t-1} = g_t / Z_t + e^w R_t with g_t / Z_t = (g_t / z_t) e^-q_t
        const TwoTerm nt = two_term(-o.q, w + rp);
        const float gz = p.g * rz * nt.ex;
        rr = fmaf(nt.ey, rr, gz);
        ss = fmaf(nt.ey, ss, gz * yt);
        rp = nt.big;
      }
    }
  }
}

unsigned blocks(int64_t B, int64_t C) { return static_cast<unsigned>((B * C + kThreads - 1) / kThreads); }

template <class S>
void forward_impl(const float* decay, const float* first, const S* k, const S* v, int64_t B, int64_t T, int64_t C, S* y,
                  float* state, cudaStream_t stream) {
  if (B * C == 0) return;
  launch(wkv_forward_kernel<S>, blocks(B, C), kThreads, 0, stream, decay, first, k, v, B, T, C, y, state);
}

template <class S>
void backward_impl(const float* decay, const float* first, const S* k, const S* v, const S* dy, int64_t B, int64_t T,
                   int64_t C, S* dk, S* dv, float* scratch, cudaStream_t stream) {
  if (B * C * T == 0) return;
  launch(wkv_backward_kernel<S>, blocks(B, C), kThreads, 0, stream, decay, first, k, v, dy, B, T, C, dk, dv, scratch);
}

}  // namespace

void wkv_forward(const float* time_decay, const float* time_first, const float* k, const float* v, int64_t B,
                 int64_t T, int64_t C, float* y, float* state, cudaStream_t stream) {
  forward_impl(time_decay, time_first, k, v, B, T, C, y, state, stream);
}
void wkv_forward(const float* time_decay, const float* time_first, const __nv_bfloat16* k, const __nv_bfloat16* v,
                 int64_t B, int64_t T, int64_t C, __nv_bfloat16* y, float* state, cudaStream_t stream) {
  forward_impl(time_decay, time_first, k, v, B, T, C, y, state, stream);
}
void wkv_backward(const float* time_decay, const float* time_first, const float* k, const float* v, const float* dy,
                  int64_t B, int64_t T, int64_t C, float* dk, float* dv, float* scratch, cudaStream_t stream) {
  backward_impl(time_decay, time_first, k, v, dy, B, T, C, dk, dv, scratch, stream);
}
void wkv_backward(const float* time_decay, const float* time_first, const __nv_bfloat16* k, const __nv_bfloat16* v,
                  const __nv_bfloat16* dy, int64_t B, int64_t T, int64_t C, __nv_bfloat16* dk, __nv_bfloat16* dv,
                  float* scratch, cudaStream_t stream) {
  backward_impl(time_decay, time_first, k, v, dy, B, T, C, dk, dv, scratch, stream);
}

}  // namespace ditty::cuda
