// RWKV-4 kernels: token shift + time mix, WKV (the stable aa/bb/pp form), gates.
#pragma once
#include <cstdint>

namespace ditty::cpu {

// For each of n_mix mixes j: outs[j][b,t,:] = x[b,t,:] * mix_j + prev[b,t,:] * (1 - mix_j) with
// prev[b,t] = x[b,t-1], and prev[b,0] = state[b,:] (zeros when state is null). x [B,T,C], mix_j [C].
void time_mix_forward(const float* x, const float* state, int64_t B, int64_t T, int64_t C, const float* const* mixes,
                      int n_mix, float* const* outs);
// dx (+)= the gradient through all n_mix mixes (douts[j] [B,T,C]); the state gets no gradient.
void time_mix_backward(const float* const* douts, const float* const* mixes, int n_mix, int64_t B, int64_t T,
                       int64_t C, float* dx, bool accumulate);

// y[b,t,c] = WKV with w = -exp(time_decay[c]), u = time_first[c] on k, v [B,T,C]. When state is not
// null it holds aa, bb, pp as [3,B,C]: read as the start state and overwritten with the end state
// (pp starts at -1e38 for an empty state).
void wkv_forward(const float* time_decay, const float* time_first, const float* k, const float* v, int64_t B,
                 int64_t T, int64_t C, float* y, float* state);
// dk, dv [B,T,C] (written, not accumulated) from dy, starting from the empty state; decay and
// first are frozen base weights (no gradient).
void wkv_backward(const float* time_decay, const float* time_first, const float* k, const float* v,
                  const float* dy, int64_t B, int64_t T, int64_t C, float* dk, float* dv);

// out = sigmoid(a) * y
void sigmoid_gate_forward(const float* a, const float* y, float* out, int64_t n);
// da = dout * y * s (1 - s), dy = dout * s (either may be null)
void sigmoid_gate_backward(const float* a, const float* y, const float* dout, float* da, float* dy, int64_t n);
// out = relu(x)^2
void relu_square_forward(const float* x, float* out, int64_t n);
// dx = dy * 2 relu(x)
void relu_square_backward(const float* x, const float* dy, float* dx, int64_t n);

}  // namespace ditty::cpu
