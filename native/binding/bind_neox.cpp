// GPT-NeoX kernels (ditty/neox.h) for src/engine/native/addon.ts: shapes are checked here, then
// every buffer against the elements the call reads or writes.
#include <cmath>

#include "args.h"
#include "common_bind_util.h"
#include "ditty/neox.h"

namespace ditty::binding {
namespace {

void check_rotary(const Napi::CallbackInfo& info, int64_t d, int64_t R, double base) {
  if (R > d || R % 2 != 0) fail(info.Env(), "R: the rotary dimensions must be even and at most d = " + std::to_string(d) + ", got " + std::to_string(R));
  if (R > 0 && !(base > 0 && std::isfinite(base))) fail(info.Env(), "base: expected a positive number, got " + std::to_string(base));
}

// qkvRotaryForward(qkv, B, T, heads, d, R, base, offset, q, k, v)
Napi::Value qkv_rotary_forward(const Napi::CallbackInfo& info) {
  int64_t B = int_arg(info, 1, "B"), T = int_arg(info, 2, "T"), heads = int_arg(info, 3, "heads"), d = int_arg(info, 4, "d", 1);
  int64_t R = int_arg(info, 5, "R");
  double base = number_arg(info, 6, "base");
  int64_t offset = int_arg(info, 7, "offset");
  check_rotary(info, d, R, base);
  int64_t n = elements(info, "q", {B, T, heads, d});
  const float* qkv = f32(info, 0, "qkv", elements(info, "qkv", {3, n}));
  float* q = f32(info, 8, "q", n);
  float* k = f32(info, 9, "k", n);
  float* v = f32(info, 10, "v", n);
  cpu::qkv_rotary_forward(qkv, B, T, heads, d, R, base, offset, q, k, v);
  return info.Env().Undefined();
}

// qkvRotaryBackward(dq, dk, dv, B, T, heads, d, R, base, offset, dqkv)
Napi::Value qkv_rotary_backward(const Napi::CallbackInfo& info) {
  int64_t B = int_arg(info, 3, "B"), T = int_arg(info, 4, "T"), heads = int_arg(info, 5, "heads"), d = int_arg(info, 6, "d", 1);
  int64_t R = int_arg(info, 7, "R");
  double base = number_arg(info, 8, "base");
  int64_t offset = int_arg(info, 9, "offset");
  check_rotary(info, d, R, base);
  int64_t n = elements(info, "dq", {B, T, heads, d});
  int64_t packed = elements(info, "dqkv", {3, n});
  const float* dq = f32(info, 0, "dq", n);
  const float* dk = f32(info, 1, "dk", n);
  const float* dv = f32(info, 2, "dv", n);
  float* dqkv = f32(info, 10, "dqkv", packed);
  cpu::qkv_rotary_backward(dq, dk, dv, B, T, heads, d, R, base, offset, dqkv);
  return info.Env().Undefined();
}

// attentionForward(q, k, v, B, H, T, S, d, out, lse)
Napi::Value attention_forward(const Napi::CallbackInfo& info) {
  int64_t B = int_arg(info, 3, "B"), H = int_arg(info, 4, "H"), T = int_arg(info, 5, "T"), S = int_arg(info, 6, "S");
  int64_t d = int_arg(info, 7, "d", 1);
  if (S < T) fail(info.Env(), "S: keys must cover the queries (S >= T), got S = " + std::to_string(S) + ", T = " + std::to_string(T));
  const int64_t nq = elements(info, "q", {B, H, T, d}), nkv = elements(info, "k", {B, H, S, d});
  const float* q = f32(info, 0, "q", nq);
  const float* k = f32(info, 1, "k", nkv);
  const float* v = f32(info, 2, "v", nkv);
  float* out = f32(info, 8, "out", nq);
  float* lse = f32_opt(info, 9, "lse", B * H * T);
  cpu::attention_forward(q, k, v, B, H, T, S, d, out, lse);
  return info.Env().Undefined();
}

// attentionBackward(dout, q, k, v, out, lse, B, H, T, d, dq, dk, dv)
Napi::Value attention_backward(const Napi::CallbackInfo& info) {
  int64_t B = int_arg(info, 6, "B"), H = int_arg(info, 7, "H"), T = int_arg(info, 8, "T"), d = int_arg(info, 9, "d", 1);
  int64_t n = elements(info, "q", {B, H, T, d});
  const float* dout = f32(info, 0, "dout", n);
  const float* q = f32(info, 1, "q", n);
  const float* k = f32(info, 2, "k", n);
  const float* v = f32(info, 3, "v", n);
  const float* out = f32(info, 4, "out", n);
  const float* lse = f32(info, 5, "lse", B * H * T);
  float* dq = f32(info, 10, "dq", n);
  float* dk = f32(info, 11, "dk", n);
  float* dv = f32(info, 12, "dv", n);
  cpu::attention_backward(dout, q, k, v, out, lse, B, H, T, d, dq, dk, dv);
  return info.Env().Undefined();
}

cpu::Gelu gelu_kind(const Napi::CallbackInfo& info, size_t i) {
  int64_t kind = int_arg(info, i, "kind");
  if (kind > 2) fail(info.Env(), "kind: expected 0 (erf), 1 (tanh) or 2 (fast), got " + std::to_string(kind));
  return static_cast<cpu::Gelu>(kind);
}

// geluForward(x, out, n, kind); out may be x
Napi::Value gelu_forward(const Napi::CallbackInfo& info) {
  int64_t n = int_arg(info, 2, "n");
  cpu::Gelu kind = gelu_kind(info, 3);
  cpu::gelu_forward(f32(info, 0, "x", n), f32(info, 1, "out", n), n, kind);
  return info.Env().Undefined();
}

// geluBackward(x, dy, dx, n, kind); dx may be dy
Napi::Value gelu_backward(const Napi::CallbackInfo& info) {
  int64_t n = int_arg(info, 3, "n");
  cpu::Gelu kind = gelu_kind(info, 4);
  cpu::gelu_backward(f32(info, 0, "x", n), f32(info, 1, "dy", n), f32(info, 2, "dx", n), n, kind);
  return info.Env().Undefined();
}

}  // namespace

void register_neox(Napi::Env env, Napi::Object exports) {
  set_function(env, exports, "qkvRotaryForward", qkv_rotary_forward);
  set_function(env, exports, "qkvRotaryBackward", qkv_rotary_backward);
  set_function(env, exports, "attentionForward", attention_forward);
  set_function(env, exports, "attentionBackward", attention_backward);
  set_function(env, exports, "geluForward", gelu_forward);
  set_function(env, exports, "geluBackward", gelu_backward);
}

}  // namespace ditty::binding
