// GPT-NeoX kernels (ditty/neox.h) for src/engine/native/addon.ts: shapes are checked here, then
// every buffer against the elements the call reads or writes; buffers on the CUDA device go to
// native/cuda/bind/ops.h.
#include <cmath>

#include "call.h"
#include "common_bind_util.h"
#include "cuda/bind/ops.h"
#include "ditty/neox.h"

namespace ditty::binding {
namespace {

// B, T, heads, d, R, base, offset: the seven arguments from `first` on that both rotary calls take,
// checked; n = B T heads d (named `per_part` in messages), the elements of each of q, k, v.
struct RotaryArgs {
  int64_t B, T, heads, d, R;
  double base;
  int64_t offset, n;
};
RotaryArgs rotary_args(const Napi::CallbackInfo& info, size_t first, const char* per_part) {
  const int64_t B = int_arg(info, first, "B"), T = int_arg(info, first + 1, "T"), heads = int_arg(info, first + 2, "heads"),
                d = int_arg(info, first + 3, "d", 1);
  const int64_t R = int_arg(info, first + 4, "R");
  const double base = number_arg(info, first + 5, "base");
  const int64_t offset = int_arg(info, first + 6, "offset");
  if (R > d || R % 2 != 0) fail(info.Env(), "R: the rotary dimensions must be even and at most d = " + std::to_string(d) + ", got " + std::to_string(R));
  if (R > 0 && !(base > 0 && std::isfinite(base))) fail(info.Env(), "base: expected a positive number, got " + std::to_string(base));
  return {B, T, heads, d, R, base, offset, elements(info, per_part, {B, T, heads, d})};
}

// qkvRotaryForward(qkv, B, T, heads, d, R, base, offset, q, k, v)
Napi::Value qkv_rotary_forward(const Napi::CallbackInfo& info) {
  Call c(info);
  const RotaryArgs a = rotary_args(info, 1, "q");
  Buffer& qkv = c.act(0, "qkv", elements(info, "qkv", {3, a.n}));
  Buffer& q = c.act(8, "q", a.n);
  Buffer& k = c.act(9, "k", a.n);
  Buffer& v = c.act(10, "v", a.n);
  if (c.cuda()) cuda::ops::qkv_rotary_forward(qkv, a.B, a.T, a.heads, a.d, a.R, a.base, a.offset, q, k, v);
  else cpu::qkv_rotary_forward(fp(qkv), a.B, a.T, a.heads, a.d, a.R, a.base, a.offset, fp(q), fp(k), fp(v));
  return info.Env().Undefined();
}

// qkvRotaryBackward(dq, dk, dv, B, T, heads, d, R, base, offset, dqkv)
Napi::Value qkv_rotary_backward(const Napi::CallbackInfo& info) {
  Call c(info);
  const RotaryArgs a = rotary_args(info, 3, "dq");
  const int64_t packed = elements(info, "dqkv", {3, a.n});
  Buffer& dq = c.act(0, "dq", a.n);
  Buffer& dk = c.act(1, "dk", a.n);
  Buffer& dv = c.act(2, "dv", a.n);
  Buffer& dqkv = c.act(10, "dqkv", packed);
  if (c.cuda()) cuda::ops::qkv_rotary_backward(dq, dk, dv, a.B, a.T, a.heads, a.d, a.R, a.base, a.offset, dqkv);
  else cpu::qkv_rotary_backward(fp(dq), fp(dk), fp(dv), a.B, a.T, a.heads, a.d, a.R, a.base, a.offset, fp(dqkv));
  return info.Env().Undefined();
}

// attentionForward(q, k, v, B, H, T, S, d, out, lse)
Napi::Value attention_forward(const Napi::CallbackInfo& info) {
  Call c(info);
  int64_t B = int_arg(info, 3, "B"), H = int_arg(info, 4, "H"), T = int_arg(info, 5, "T"), S = int_arg(info, 6, "S");
  int64_t d = int_arg(info, 7, "d", 1);
  if (S < T) fail(info.Env(), "S: keys must cover the queries (S >= T), got S = " + std::to_string(S) + ", T = " + std::to_string(T));
  const int64_t nq = elements(info, "q", {B, H, T, d}), nkv = elements(info, "k", {B, H, S, d});
  Buffer& q = c.act(0, "q", nq);
  Buffer& k = c.act(1, "k", nkv);
  Buffer& v = c.act(2, "v", nkv);
  Buffer& out = c.act(8, "out", nq);
  Buffer* lse = c.f32_opt(9, "lse", B * H * T);
  if (c.cuda()) cuda::ops::attention_forward(q, k, v, B, H, T, S, d, out, lse);
  else cpu::attention_forward(fp(q), fp(k), fp(v), B, H, T, S, d, fp(out), fp(lse));
  return info.Env().Undefined();
}

// attentionBackward(dout, q, k, v, out, lse, B, H, T, d, dq, dk, dv)
Napi::Value attention_backward(const Napi::CallbackInfo& info) {
  Call c(info);
  int64_t B = int_arg(info, 6, "B"), H = int_arg(info, 7, "H"), T = int_arg(info, 8, "T"), d = int_arg(info, 9, "d", 1);
  int64_t n = elements(info, "q", {B, H, T, d});
  Buffer& dout = c.act(0, "dout", n);
  Buffer& q = c.act(1, "q", n);
  Buffer& k = c.act(2, "k", n);
  Buffer& v = c.act(3, "v", n);
  Buffer& out = c.act(4, "out", n);
  Buffer& lse = c.f32(5, "lse", B * H * T);
  Buffer& dq = c.act(10, "dq", n);
  Buffer& dk = c.act(11, "dk", n);
  Buffer& dv = c.act(12, "dv", n);
  if (c.cuda()) cuda::ops::attention_backward(dout, q, k, v, out, lse, B, H, T, d, dq, dk, dv);
  else cpu::attention_backward(fp(dout), fp(q), fp(k), fp(v), fp(out), fp(lse), B, H, T, d, fp(dq), fp(dk), fp(dv));
  return info.Env().Undefined();
}

cpu::Gelu gelu_kind(const Napi::CallbackInfo& info, size_t i) {
  int64_t kind = int_arg(info, i, "kind");
  if (kind > 2) fail(info.Env(), "kind: expected 0 (erf), 1 (tanh) or 2 (fast), got " + std::to_string(kind));
  return static_cast<cpu::Gelu>(kind);
}

// geluForward(x, out, n, kind); out may be x
Napi::Value gelu_forward(const Napi::CallbackInfo& info) {
  Call c(info);
  int64_t n = int_arg(info, 2, "n");
  cpu::Gelu kind = gelu_kind(info, 3);
  Buffer& x = c.act(0, "x", n);
  Buffer& out = c.act(1, "out", n);
  if (c.cuda()) cuda::ops::gelu_forward(x, out, n, kind);
  else cpu::gelu_forward(fp(x), fp(out), n, kind);
  return info.Env().Undefined();
}

// geluBackward(x, dy, dx, n, kind); dx may be dy
Napi::Value gelu_backward(const Napi::CallbackInfo& info) {
  Call c(info);
  int64_t n = int_arg(info, 3, "n");
  cpu::Gelu kind = gelu_kind(info, 4);
  Buffer& x = c.act(0, "x", n);
  Buffer& dy = c.act(1, "dy", n);
  Buffer& dx = c.act(2, "dx", n);
  if (c.cuda()) cuda::ops::gelu_backward(x, dy, dx, n, kind);
  else cpu::gelu_backward(fp(x), fp(dy), fp(dx), n, kind);
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
