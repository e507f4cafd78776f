// Argument checking shared by the N-API bindings: every kernel binding turns JS numbers into
// checked integers and buffer ids into typed pointers whose element counts it verifies, so a
// wrong call is a JS exception naming the argument, never an out-of-bounds access.
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

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

// A buffer id with at least `need` elements of dtype `t`.
inline Buffer& buffer_arg(const Napi::CallbackInfo& info, size_t i, const char* name, DType t, int64_t need) {
  int64_t id = int_arg(info, i, name, 0);
  Buffer* b;
  try {
    b = &buffers().get(static_cast<int32_t>(id));
  } catch (const std::exception& e) {
    fail(info.Env(), std::string(name) + ": " + e.what());
  }
  if (b->dtype != t) {
    fail(info.Env(), std::string(name) + ": buffer " + std::to_string(id) + " holds " + dtype_name(b->dtype) + ", expected " +
                         dtype_name(t));
  }
  if (need < 0 || static_cast<uint64_t>(need) > b->count) {
    fail(info.Env(), std::string(name) + ": buffer " + std::to_string(id) + " has " + std::to_string(b->count) +
                         " elements, the call needs " + std::to_string(need));
  }
  return *b;
}

inline bool is_absent(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length()) return true;
  Napi::Value v = info[i];
  return v.IsUndefined() || v.IsNull() || (v.IsNumber() && v.As<Napi::Number>().DoubleValue() == -1);
}

inline float* f32(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t need) {
  return static_cast<float*>(buffer_arg(info, i, name, DType::F32, need).data);
}
// null when the argument is -1, null or undefined
inline float* f32_opt(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t need) {
  return is_absent(info, i) ? nullptr : f32(info, i, name, need);
}
inline int32_t* i32(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t need) {
  return static_cast<int32_t*>(buffer_arg(info, i, name, DType::I32, need).data);
}
inline uint8_t* u8(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t need) {
  return static_cast<uint8_t*>(buffer_arg(info, i, name, DType::U8, need).data);
}

// An array of f32 buffer ids, each with `need` elements.
inline std::vector<float*> f32_list(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t need) {
  Napi::Value v = arg(info, i, name);
  if (!v.IsArray()) fail(info.Env(), std::string(name) + ": expected an array of buffer ids");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<float*> out;
  for (uint32_t k = 0; k < a.Length(); k++) {
    Napi::Value e = a.Get(k);
    if (!e.IsNumber()) fail(info.Env(), std::string(name) + ": expected buffer ids");
    int32_t id = e.As<Napi::Number>().Int32Value();
    Buffer* b;
    try {
      b = &buffers().get(id);
    } catch (const std::exception& ex) {
      fail(info.Env(), std::string(name) + ": " + ex.what());
    }
    if (b->dtype != DType::F32 || b->count < static_cast<uint64_t>(need)) {
      fail(info.Env(), std::string(name) + ": buffer " + std::to_string(id) + " is not f32 with " + std::to_string(need) + " elements");
    }
    out.push_back(static_cast<float*>(b->data));
  }
  return out;
}

inline void set_function(Napi::Env env, Napi::Object exports, const char* name, Napi::Function::Callback fn) {
  exports.Set(name, Napi::Function::New(env, fn, name));
}

}  // namespace ditty::binding
