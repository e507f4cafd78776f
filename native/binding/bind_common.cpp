// Bindings of the shared kernels (ditty/common.h) except headCrossEntropy, which the gemm family
// binds. Buffers on the CUDA device go to native/cuda/bind/ops.h, others to the CPU kernels.
#include <limits>
#include <string>

#include "call.h"
#include "common_bind_util.h"
#include "cuda/bind/ops.h"
#include "ditty/common.h"

namespace ditty::binding {
namespace {

constexpr double kFloatMax = std::numeric_limits<float>::max();

// embeddingForward(ids, n, table, V, C, out)
Napi::Value embedding_forward(const Napi::CallbackInfo& info) {
  Call c(info);
  int64_t n = int_arg(info, 1, "n");
  int64_t V = int_arg(info, 3, "V", 1);
  int64_t C = int_arg(info, 4, "C", 1);
  Buffer& ids = c.i32(0, "ids", n);
  Buffer& table = c.act(2, "table", elements(info, "table", {V, C}));
  Buffer& out = c.act(5, "out", elements(info, "out", {n, C}));
  const std::vector<int32_t> host = c.cuda() ? cuda::ops::read_i32(ids, n) : std::vector<int32_t>();
  const int32_t* id = c.cuda() ? host.data() : static_cast<const int32_t*>(ids.data);
  for (int64_t i = 0; i < n; i++) {
    if (id[i] < 0 || id[i] >= V) {
      fail(info.Env(), "ids: ids[" + std::to_string(i) + "] = " + std::to_string(id[i]) + " is outside [0, " +
                           std::to_string(V) + ")");
    }
  }
  if (c.cuda()) cuda::ops::embedding_forward(ids, n, table, C, out);
  else cpu::embedding_forward(id, n, fp(table), C, fp(out));
  return info.Env().Undefined();
}

// layernormForward(x, w, b, N, C, eps, out, mean, rstd)
Napi::Value layernorm_forward(const Napi::CallbackInfo& info) {
  Call c(info);
  int64_t N = int_arg(info, 3, "N");
  int64_t C = int_arg(info, 4, "C", 1);
  double eps = ranged_arg(info, 5, "eps", 0, kFloatMax);
  int64_t NC = elements(info, "x", {N, C});
  Buffer& x = c.act(0, "x", NC);
  Buffer& w = c.f32(1, "w", C);
  Buffer& b = c.f32(2, "b", C);
  Buffer& out = c.act(6, "out", NC);
  Buffer& mean = c.f32(7, "mean", N);
  Buffer& rstd = c.f32(8, "rstd", N);
  if (c.cuda()) cuda::ops::layernorm_forward(x, w, b, N, C, static_cast<float>(eps), out, mean, rstd);
  else cpu::layernorm_forward(fp(x), fp(w), fp(b), N, C, static_cast<float>(eps), fp(out), fp(mean), fp(rstd));
  return info.Env().Undefined();
}

// layernormBackward(dy, x, w, mean, rstd, N, C, dx, accumulate)
Napi::Value layernorm_backward(const Napi::CallbackInfo& info) {
  Call c(info);
  int64_t N = int_arg(info, 5, "N");
  int64_t C = int_arg(info, 6, "C", 1);
  int64_t NC = elements(info, "x", {N, C});
  Buffer& dy = c.act(0, "dy", NC);
  Buffer& x = c.act(1, "x", NC);
  Buffer& w = c.f32(2, "w", C);
  Buffer& mean = c.f32(3, "mean", N);
  Buffer& rstd = c.f32(4, "rstd", N);
  Buffer& dx = c.act(7, "dx", NC);
  bool accumulate = bool_arg(info, 8, "accumulate");
  if (c.cuda()) cuda::ops::layernorm_backward(dy, x, w, mean, rstd, N, C, dx, accumulate);
  else cpu::layernorm_backward(fp(dy), fp(x), fp(w), fp(mean), fp(rstd), N, C, fp(dx), accumulate);
  return info.Env().Undefined();
}

// add(a, b, out, n)
Napi::Value add(const Napi::CallbackInfo& info) { return elementwise(info, {"a", "b", "out"}, cuda::ops::add, cpu::add); }

// addInplace(y, x, n)
Napi::Value add_inplace(const Napi::CallbackInfo& info) {
  return elementwise(info, {"y", "x"}, cuda::ops::add_inplace, cpu::add_inplace);
}

// scaleInplace(x, n, s)
Napi::Value scale_inplace(const Napi::CallbackInfo& info) {
  Call c(info);
  int64_t n = int_arg(info, 1, "n");
  Buffer& x = c.act(0, "x", n);
  double s = number_arg(info, 2, "s");
  if (c.cuda()) cuda::ops::scale_inplace(x, n, static_cast<float>(s));
  else cpu::scale_inplace(fp(x), n, static_cast<float>(s));
  return info.Env().Undefined();
}

// adamwStep(p, g, m, v, n, lr, beta1, beta2, eps, weightDecay, step)
Napi::Value adamw_step(const Napi::CallbackInfo& info) {
  Call c(info);
  int64_t n = int_arg(info, 4, "n");
  Buffer& p = c.f32(0, "p", n);
  Buffer& g = c.f32(1, "g", n);
  Buffer& m = c.f32(2, "m", n);
  Buffer& v = c.f32(3, "v", n);
  double lr = ranged_arg(info, 5, "lr", 0, kFloatMax);
  double beta1 = ranged_arg(info, 6, "beta1", 0, 1, true);
  double beta2 = ranged_arg(info, 7, "beta2", 0, 1, true);
  double eps = ranged_arg(info, 8, "eps", 0, kFloatMax);
  double wd = ranged_arg(info, 9, "weightDecay", 0, kFloatMax);
  int64_t step = int_arg(info, 10, "step", 1);
  if (c.cuda()) cuda::ops::adamw_step(p, g, m, v, n, lr, beta1, beta2, eps, wd, step);
  else cpu::adamw_step(fp(p), fp(g), fp(m), fp(v), n, lr, beta1, beta2, eps, wd, step);
  return info.Env().Undefined();
}

// sumSquares(x, n) -> number
Napi::Value sum_squares(const Napi::CallbackInfo& info) {
  Call c(info);
  int64_t n = int_arg(info, 1, "n");
  Buffer& x = c.f32(0, "x", n);
  return Napi::Number::New(info.Env(), c.cuda() ? cuda::ops::sum_squares(x, n) : cpu::sum_squares(fp(x), n));
}

}  // namespace

void register_common(Napi::Env env, Napi::Object exports) {
  set_function(env, exports, "embeddingForward", embedding_forward);
  set_function(env, exports, "layernormForward", layernorm_forward);
  set_function(env, exports, "layernormBackward", layernorm_backward);
  set_function(env, exports, "add", add);
  set_function(env, exports, "addInplace", add_inplace);
  set_function(env, exports, "scaleInplace", scale_inplace);
  set_function(env, exports, "adamwStep", adamw_step);
  set_function(env, exports, "sumSquares", sum_squares);
}

}  // namespace ditty::binding
