// Bindings of the RWKV-4 kernels (ditty/rwkv.h); buffers on the CUDA device go to native/cuda/bind/ops.h.
#include <string>

#include "call.h"
#include "common_bind_util.h"
#include "cuda/bind/ops.h"
#include "ditty/rwkv.h"

namespace ditty::binding {
namespace {

std::vector<float*> floats(const std::vector<Buffer*>& list) {
  std::vector<float*> out;
  for (Buffer* b : list) out.push_back(fp(b));
  return out;
}

// timeMixForward(x, state, B, T, C, mixes, outs)
Napi::Value time_mix_forward(const Napi::CallbackInfo& info) {
  Call c(info);
  int64_t B = int_arg(info, 2, "B");
  int64_t T = int_arg(info, 3, "T");
  int64_t C = int_arg(info, 4, "C");
  int64_t n = elements(info, "x", {B, T, C});
  Buffer& x = c.act(0, "x", n);
  Buffer* state = c.act_opt(1, "state", elements(info, "state", {B, C}));
  std::vector<Buffer*> mixes = c.list(5, "mixes", C, false);
  std::vector<Buffer*> outs = c.list(6, "outs", n, true);
  if (mixes.empty() || mixes.size() != outs.size()) {
    fail(info.Env(), "outs: expected one output per mix (" + std::to_string(mixes.size()) + " mixes, " +
                         std::to_string(outs.size()) + " outputs), at least one");
  }
  if (c.cuda()) {
    cuda::ops::time_mix_forward(x, state, B, T, C, mixes, outs);
  } else {
    std::vector<float*> m = floats(mixes), o = floats(outs);
    std::vector<const float*> cm(m.begin(), m.end());
    cpu::time_mix_forward(fp(x), fp(state), B, T, C, cm.data(), static_cast<int>(m.size()), o.data());
  }
  return info.Env().Undefined();
}

// timeMixBackward(douts, mixes, B, T, C, dx, accumulate)
Napi::Value time_mix_backward(const Napi::CallbackInfo& info) {
  Call c(info);
  int64_t B = int_arg(info, 2, "B");
  int64_t T = int_arg(info, 3, "T");
  int64_t C = int_arg(info, 4, "C");
  int64_t n = elements(info, "dx", {B, T, C});
  std::vector<Buffer*> douts = c.list(0, "douts", n, true);
  std::vector<Buffer*> mixes = c.list(1, "mixes", C, false);
  if (mixes.empty() || mixes.size() != douts.size()) {
    fail(info.Env(), "douts: expected one gradient per mix (" + std::to_string(mixes.size()) + " mixes, " +
                         std::to_string(douts.size()) + " gradients), at least one");
  }
  Buffer& dx = c.act(5, "dx", n);
  bool accumulate = bool_arg(info, 6, "accumulate");
  if (c.cuda()) {
    cuda::ops::time_mix_backward(douts, mixes, B, T, C, dx, accumulate);
  } else {
    std::vector<float*> d = floats(douts), m = floats(mixes);
    std::vector<const float*> cd(d.begin(), d.end()), cm(m.begin(), m.end());
    cpu::time_mix_backward(cd.data(), cm.data(), static_cast<int>(m.size()), B, T, C, fp(dx), accumulate);
  }
  return info.Env().Undefined();
}

// What wkvForward and wkvBackward both take: timeDecay, timeFirst, k, v (arguments 0..3) and
// B, T, C (from argument `shape_at`); n = B T C.
struct WkvArgs {
  int64_t B, T, C, n;
  Buffer &decay, &first, &k, &v;
};
WkvArgs wkv_args(Call& c, const Napi::CallbackInfo& info, size_t shape_at) {
  const int64_t B = int_arg(info, shape_at, "B");
  const int64_t T = int_arg(info, shape_at + 1, "T");
  const int64_t C = int_arg(info, shape_at + 2, "C");
  const int64_t n = elements(info, "k", {B, T, C});
  return {B, T, C, n, c.f32(0, "timeDecay", C), c.f32(1, "timeFirst", C), c.act(2, "k", n), c.act(3, "v", n)};
}

// wkvForward(timeDecay, timeFirst, k, v, B, T, C, y, state)
Napi::Value wkv_forward(const Napi::CallbackInfo& info) {
  Call c(info);
  const WkvArgs a = wkv_args(c, info, 4);
  Buffer& y = c.act(7, "y", a.n);
  Buffer* state = c.f32_opt(8, "state", elements(info, "state", {3, a.B, a.C}));
  if (c.cuda()) cuda::ops::wkv_forward(a.decay, a.first, a.k, a.v, a.B, a.T, a.C, y, state);
  else cpu::wkv_forward(fp(a.decay), fp(a.first), fp(a.k), fp(a.v), a.B, a.T, a.C, fp(y), fp(state));
  return info.Env().Undefined();
}

// wkvBackward(timeDecay, timeFirst, k, v, dy, B, T, C, dk, dv)
Napi::Value wkv_backward(const Napi::CallbackInfo& info) {
  Call c(info);
  const WkvArgs a = wkv_args(c, info, 5);
  Buffer& dy = c.act(4, "dy", a.n);
  Buffer& dk = c.act(8, "dk", a.n);
  Buffer& dv = c.act(9, "dv", a.n);
  if (c.cuda()) cuda::ops::wkv_backward(a.decay, a.first, a.k, a.v, dy, a.B, a.T, a.C, dk, dv);
  else cpu::wkv_backward(fp(a.decay), fp(a.first), fp(a.k), fp(a.v), fp(dy), a.B, a.T, a.C, fp(dk), fp(dv));
  return info.Env().Undefined();
}

// sigmoidGateForward(a, y, out, n)
Napi::Value sigmoid_gate_forward(const Napi::CallbackInfo& info) {
  return elementwise(info, {"a", "y", "out"}, cuda::ops::sigmoid_gate_forward, cpu::sigmoid_gate_forward);
}

// sigmoidGateBackward(a, y, dout, da, dy, n): da and dy may be -1
Napi::Value sigmoid_gate_backward(const Napi::CallbackInfo& info) {
  Call c(info);
  int64_t n = int_arg(info, 5, "n");
  Buffer& a = c.act(0, "a", n);
  Buffer& y = c.act(1, "y", n);
  Buffer& dout = c.act(2, "dout", n);
  Buffer* da = c.act_opt(3, "da", n);
  Buffer* dy = c.act_opt(4, "dy", n);
  if (c.cuda()) cuda::ops::sigmoid_gate_backward(a, y, dout, da, dy, n);
  else cpu::sigmoid_gate_backward(fp(a), fp(y), fp(dout), fp(da), fp(dy), n);
  return info.Env().Undefined();
}

// reluSquareForward(x, out, n)
Napi::Value relu_square_forward(const Napi::CallbackInfo& info) {
  return elementwise(info, {"x", "out"}, cuda::ops::relu_square_forward, cpu::relu_square_forward);
}

// reluSquareBackward(x, dy, dx, n)
Napi::Value relu_square_backward(const Napi::CallbackInfo& info) {
  return elementwise(info, {"x", "dy", "dx"}, cuda::ops::relu_square_backward, cpu::relu_square_backward);
}

}  // namespace

void register_rwkv(Napi::Env env, Napi::Object exports) {
  set_function(env, exports, "timeMixForward", time_mix_forward);
  set_function(env, exports, "timeMixBackward", time_mix_backward);
  set_function(env, exports, "wkvForward", wkv_forward);
  set_function(env, exports, "wkvBackward", wkv_backward);
  set_function(env, exports, "sigmoidGateForward", sigmoid_gate_forward);
  set_function(env, exports, "sigmoidGateBackward", sigmoid_gate_backward);
  set_function(env, exports, "reluSquareForward", relu_square_forward);
  set_function(env, exports, "reluSquareBackward", relu_square_backward);
}

}  // namespace ditty::binding
