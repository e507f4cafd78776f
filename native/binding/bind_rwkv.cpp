// Bindings of the RWKV-4 kernels (ditty/rwkv.h).
#include <string>

#include "args.h"
#include "common_bind_util.h"
#include "ditty/rwkv.h"

namespace ditty::binding {
namespace {

// timeMixForward(x, state, B, T, C, mixes, outs)
Napi::Value time_mix_forward(const Napi::CallbackInfo& info) {
  int64_t B = int_arg(info, 2, "B");
  int64_t T = int_arg(info, 3, "T");
  int64_t C = int_arg(info, 4, "C");
  int64_t n = elements(info, "x", {B, T, C});
  const float* x = f32(info, 0, "x", n);
  const float* state = f32_opt(info, 1, "state", elements(info, "state", {B, C}));
  std::vector<float*> mixes = f32_list(info, 5, "mixes", C);
  std::vector<float*> outs = f32_list(info, 6, "outs", n);
  if (mixes.empty() || mixes.size() != outs.size()) {
    fail(info.Env(), "outs: expected one output per mix (" + std::to_string(mixes.size()) + " mixes, " +
                         std::to_string(outs.size()) + " outputs), at least one");
  }
  std::vector<const float*> cmixes(mixes.begin(), mixes.end());
  cpu::time_mix_forward(x, state, B, T, C, cmixes.data(), static_cast<int>(mixes.size()), outs.data());
  return info.Env().Undefined();
}

// timeMixBackward(douts, mixes, B, T, C, dx, accumulate)
Napi::Value time_mix_backward(const Napi::CallbackInfo& info) {
  int64_t B = int_arg(info, 2, "B");
  int64_t T = int_arg(info, 3, "T");
  int64_t C = int_arg(info, 4, "C");
  int64_t n = elements(info, "dx", {B, T, C});
  std::vector<float*> douts = f32_list(info, 0, "douts", n);
  std::vector<float*> mixes = f32_list(info, 1, "mixes", C);
  if (mixes.empty() || mixes.size() != douts.size()) {
    fail(info.Env(), "douts: expected one gradient per mix (" + std::to_string(mixes.size()) + " mixes, " +
                         std::to_string(douts.size()) + " gradients), at least one");
  }
  float* dx = f32(info, 5, "dx", n);
  bool accumulate = bool_arg(info, 6, "accumulate");
  std::vector<const float*> cdouts(douts.begin(), douts.end()), cmixes(mixes.begin(), mixes.end());
  cpu::time_mix_backward(cdouts.data(), cmixes.data(), static_cast<int>(mixes.size()), B, T, C, dx, accumulate);
  return info.Env().Undefined();
}

// wkvForward(timeDecay, timeFirst, k, v, B, T, C, y, state)
Napi::Value wkv_forward(const Napi::CallbackInfo& info) {
  int64_t B = int_arg(info, 4, "B");
  int64_t T = int_arg(info, 5, "T");
  int64_t C = int_arg(info, 6, "C");
  int64_t n = elements(info, "k", {B, T, C});
  const float* decay = f32(info, 0, "timeDecay", C);
  const float* first = f32(info, 1, "timeFirst", C);
  const float* k = f32(info, 2, "k", n);
  const float* v = f32(info, 3, "v", n);
  float* y = f32(info, 7, "y", n);
  float* state = f32_opt(info, 8, "state", elements(info, "state", {3, B, C}));
  cpu::wkv_forward(decay, first, k, v, B, T, C, y, state);
  return info.Env().Undefined();
}

// wkvBackward(timeDecay, timeFirst, k, v, dy, B, T, C, dk, dv)
Napi::Value wkv_backward(const Napi::CallbackInfo& info) {
  int64_t B = int_arg(info, 5, "B");
  int64_t T = int_arg(info, 6, "T");
  int64_t C = int_arg(info, 7, "C");
  int64_t n = elements(info, "k", {B, T, C});
  const float* decay = f32(info, 0, "timeDecay", C);
  const float* first = f32(info, 1, "timeFirst", C);
  const float* k = f32(info, 2, "k", n);
  const float* v = f32(info, 3, "v", n);
  const float* dy = f32(info, 4, "dy", n);
  float* dk = f32(info, 8, "dk", n);
  float* dv = f32(info, 9, "dv", n);
  cpu::wkv_backward(decay, first, k, v, dy, B, T, C, dk, dv);
  return info.Env().Undefined();
}

// sigmoidGateForward(a, y, out, n)
Napi::Value sigmoid_gate_forward(const Napi::CallbackInfo& info) {
  int64_t n = int_arg(info, 3, "n");
  cpu::sigmoid_gate_forward(f32(info, 0, "a", n), f32(info, 1, "y", n), f32(info, 2, "out", n), n);
  return info.Env().Undefined();
}

// sigmoidGateBackward(a, y, dout, da, dy, n): da and dy may be -1
Napi::Value sigmoid_gate_backward(const Napi::CallbackInfo& info) {
  int64_t n = int_arg(info, 5, "n");
  const float* a = f32(info, 0, "a", n);
  const float* y = f32(info, 1, "y", n);
  const float* dout = f32(info, 2, "dout", n);
  float* da = f32_opt(info, 3, "da", n);
  float* dy = f32_opt(info, 4, "dy", n);
  cpu::sigmoid_gate_backward(a, y, dout, da, dy, n);
  return info.Env().Undefined();
}

// reluSquareForward(x, out, n)
Napi::Value relu_square_forward(const Napi::CallbackInfo& info) {
  int64_t n = int_arg(info, 2, "n");
  cpu::relu_square_forward(f32(info, 0, "x", n), f32(info, 1, "out", n), n);
  return info.Env().Undefined();
}

// reluSquareBackward(x, dy, dx, n)
Napi::Value relu_square_backward(const Napi::CallbackInfo& info) {
  int64_t n = int_arg(info, 3, "n");
  cpu::relu_square_backward(f32(info, 0, "x", n), f32(info, 1, "dy", n), f32(info, 2, "dx", n), n);
  return info.Env().Undefined();
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
