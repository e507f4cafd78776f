// Bindings of the shared kernels (ditty/common.h) except headCrossEntropy, which the gemm family binds.
#include <limits>
#include <string>

#include "args.h"
#include "common_bind_util.h"
#include "ditty/common.h"

namespace ditty::binding {
namespace {

constexpr double kFloatMax = std::numeric_limits<float>::max();

// embeddingForward(ids, n, table, V, C, out)
Napi::Value embedding_forward(const Napi::CallbackInfo& info) {
  int64_t n = int_arg(info, 1, "n");
  int64_t V = int_arg(info, 3, "V", 1);
  int64_t C = int_arg(info, 4, "C", 1);
  const int32_t* ids = i32(info, 0, "ids", n);
  const float* table = f32(info, 2, "table", elements(info, "table", {V, C}));
  float* out = f32(info, 5, "out", elements(info, "out", {n, C}));
  for (int64_t i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] >= V) {
      fail(info.Env(), "ids: ids[" + std::to_string(i) + "] = " + std::to_string(ids[i]) + " is outside [0, " +
                           std::to_string(V) + ")");
    }
  }
  cpu::embedding_forward(ids, n, table, C, out);
  return info.Env().Undefined();
}

// layernormForward(x, w, b, N, C, eps, out, mean, rstd)
Napi::Value layernorm_forward(const Napi::CallbackInfo& info) {
  int64_t N = int_arg(info, 3, "N");
  int64_t C = int_arg(info, 4, "C", 1);
  double eps = ranged_arg(info, 5, "eps", 0, kFloatMax);
  int64_t NC = elements(info, "x", {N, C});
  const float* x = f32(info, 0, "x", NC);
  const float* w = f32(info, 1, "w", C);
  const float* b = f32(info, 2, "b", C);
  float* out = f32(info, 6, "out", NC);
  float* mean = f32(info, 7, "mean", N);
  float* rstd = f32(info, 8, "rstd", N);
  cpu::layernorm_forward(x, w, b, N, C, static_cast<float>(eps), out, mean, rstd);
  return info.Env().Undefined();
}

// layernormBackward(dy, x, w, mean, rstd, N, C, dx, accumulate)
Napi::Value layernorm_backward(const Napi::CallbackInfo& info) {
  int64_t N = int_arg(info, 5, "N");
  int64_t C = int_arg(info, 6, "C", 1);
  int64_t NC = elements(info, "x", {N, C});
  const float* dy = f32(info, 0, "dy", NC);
  const float* x = f32(info, 1, "x", NC);
  const float* w = f32(info, 2, "w", C);
  const float* mean = f32(info, 3, "mean", N);
  const float* rstd = f32(info, 4, "rstd", N);
  float* dx = f32(info, 7, "dx", NC);
  bool accumulate = bool_arg(info, 8, "accumulate");
  cpu::layernorm_backward(dy, x, w, mean, rstd, N, C, dx, accumulate);
  return info.Env().Undefined();
}

// add(a, b, out, n)
Napi::Value add(const Napi::CallbackInfo& info) {
  int64_t n = int_arg(info, 3, "n");
  const float* a = f32(info, 0, "a", n);
  const float* b = f32(info, 1, "b", n);
  float* out = f32(info, 2, "out", n);
  cpu::add(a, b, out, n);
  return info.Env().Undefined();
}

// addInplace(y, x, n)
Napi::Value add_inplace(const Napi::CallbackInfo& info) {
  int64_t n = int_arg(info, 2, "n");
  float* y = f32(info, 0, "y", n);
  const float* x = f32(info, 1, "x", n);
  cpu::add_inplace(y, x, n);
  return info.Env().Undefined();
}

// scaleInplace(x, n, s)
Napi::Value scale_inplace(const Napi::CallbackInfo& info) {
  int64_t n = int_arg(info, 1, "n");
  float* x = f32(info, 0, "x", n);
  double s = number_arg(info, 2, "s");
  cpu::scale_inplace(x, n, static_cast<float>(s));
  return info.Env().Undefined();
}

// adamwStep(p, g, m, v, n, lr, beta1, beta2, eps, weightDecay, step)
Napi::Value adamw_step(const Napi::CallbackInfo& info) {
  int64_t n = int_arg(info, 4, "n");
  float* p = f32(info, 0, "p", n);
  const float* g = f32(info, 1, "g", n);
  float* m = f32(info, 2, "m", n);
  float* v = f32(info, 3, "v", n);
  double lr = ranged_arg(info, 5, "lr", 0, kFloatMax);
  double beta1 = ranged_arg(info, 6, "beta1", 0, 1, true);
  double beta2 = ranged_arg(info, 7, "beta2", 0, 1, true);
  double eps = ranged_arg(info, 8, "eps", 0, kFloatMax);
  double wd = ranged_arg(info, 9, "weightDecay", 0, kFloatMax);
  int64_t step = int_arg(info, 10, "step", 1);
  cpu::adamw_step(p, g, m, v, n, lr, beta1, beta2, eps, wd, step);
  return info.Env().Undefined();
}

// sumSquares(x, n) -> number
Napi::Value sum_squares(const Napi::CallbackInfo& info) {
  int64_t n = int_arg(info, 1, "n");
  const float* x = f32(info, 0, "x", n);
  return Napi::Number::New(info.Env(), cpu::sum_squares(x, n));
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
