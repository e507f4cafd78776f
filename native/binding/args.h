// Argument checking shared by the N-API bindings: JS numbers become checked integers, booleans and
// numbers, so a wrong call is a JS exception naming the argument, never an out-of-bounds access.
// Buffer ids are checked by Call (call.h).
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "ditty/buffer.h"

namespace ditty::binding {

[[noreturn]] inline void fail(const Napi::Env& env, const std::string& message) {
  throw Napi::TypeError::New(env, message);
}

inline const Napi::Value arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length()) fail(info.Env(), std::string("missing argument ") + name);
  return info[i];
}

inline double number_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = arg(info, i, name);
  if (!v.IsNumber()) fail(info.Env(), std::string(name) + ": expected a number");
  return v.As<Napi::Number>().DoubleValue();
}

inline int64_t int_arg(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t min = 0) {
  double d = number_arg(info, i, name);
  if (!std::isfinite(d) || std::floor(d) != d || d < static_cast<double>(min) || d > 9.0e15) {
    fail(info.Env(), std::string(name) + ": expected an integer >= " + std::to_string(min) + ", got " + std::to_string(d));
  }
  return static_cast<int64_t>(d);
}

inline bool bool_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = arg(info, i, name);
  if (!v.IsBoolean()) fail(info.Env(), std::string(name) + ": expected a boolean");
  return v.As<Napi::Boolean>().Value();
}

inline bool is_absent(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length()) return true;
  Napi::Value v = info[i];
  return v.IsUndefined() || v.IsNull() || (v.IsNumber() && v.As<Napi::Number>().DoubleValue() == -1);
}

inline void set_function(Napi::Env env, Napi::Object exports, const char* name, Napi::Function::Callback fn) {
  exports.Set(name, Napi::Function::New(env, fn, name));
}

}  // namespace ditty::binding
