// Buffers, threads and build facts.
#include <cstring>

#include "args.h"
#include "ditty/cpu_features.h"
#include "ditty/parallel.h"

namespace ditty::cpu {
// weak: the core does not need the gemm family, so a development build without it
// (scripts/build-native-dev.mjs) still loads and buildInfo reports gemm "none"
__attribute__((weak)) const char* gemm_implementation();
}  // namespace ditty::cpu

namespace ditty::binding {
namespace {

DType dtype_arg(const Napi::CallbackInfo& info, size_t i) {
  int64_t t = int_arg(info, i, "dtype");
  if (t > 3) fail(info.Env(), "dtype: expected 0 (f32), 1 (bf16), 2 (u8) or 3 (i32)");
  return static_cast<DType>(t);
}

// The typed array's bytes, checked against the buffer's dtype.
std::pair<uint8_t*, size_t> typed_bytes(const Napi::CallbackInfo& info, size_t i, DType t) {
  Napi::Value v = arg(info, i, "data");
  if (!v.IsTypedArray()) fail(info.Env(), "data: expected a typed array");
  Napi::TypedArray a = v.As<Napi::TypedArray>();
  napi_typedarray_type expected = t == DType::F32 ? napi_float32_array
                                  : t == DType::BF16 ? napi_uint16_array
                                  : t == DType::U8 ? napi_uint8_array
                                                   : napi_int32_array;
  if (a.TypedArrayType() != expected) {
    fail(info.Env(), std::string("data: a ") + dtype_name(t) + " buffer needs a " +
                         (t == DType::F32 ? "Float32Array" : t == DType::BF16 ? "Uint16Array" : t == DType::U8 ? "Uint8Array" : "Int32Array"));
  }
  auto* base = static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset();
  return {base, a.ByteLength()};
}

Napi::Value alloc(const Napi::CallbackInfo& info) {
  DType t = dtype_arg(info, 0);
  int64_t count = int_arg(info, 1, "count");
  try {
    return Napi::Number::New(info.Env(), buffers().alloc(t, static_cast<size_t>(count)));
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

Napi::Value view(const Napi::CallbackInfo& info) {
  int64_t id = int_arg(info, 0, "id");
  int64_t offset = int_arg(info, 1, "offset");
  int64_t count = int_arg(info, 2, "count");
  try {
    return Napi::Number::New(info.Env(), buffers().view(static_cast<int32_t>(id), offset, count));
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

Napi::Value free_buffer(const Napi::CallbackInfo& info) {
  int64_t id = int_arg(info, 0, "id");
  try {
    buffers().free(static_cast<int32_t>(id));
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
  return info.Env().Undefined();
}

Buffer& any_buffer(const Napi::CallbackInfo& info, size_t i) {
  int64_t id = int_arg(info, i, "id");
  try {
    return buffers().get(static_cast<int32_t>(id));
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

// Where `bytes` of b's elements start at the offset argument (info[2]), checked to lie inside b;
// the error reads "<verb><n> elements at <offset><outside><count>".
uint8_t* element_range(const Napi::CallbackInfo& info, Buffer& b, size_t bytes, const char* verb, const char* outside) {
  int64_t offset = int_arg(info, 2, "offset");
  size_t es = dtype_size(b.dtype);
  if (static_cast<size_t>(offset) > b.count || bytes / es > b.count - offset) {
    fail(info.Env(), verb + std::to_string(bytes / es) + " elements at " + std::to_string(offset) + outside +
                         std::to_string(b.count));
  }
  return static_cast<uint8_t*>(b.data) + offset * es;
}

// write(id, typedArray, offset): copies the array into elements [offset, offset + length)
Napi::Value write(const Napi::CallbackInfo& info) {
  Buffer& b = any_buffer(info, 0);
  auto [src, bytes] = typed_bytes(info, 1, b.dtype);
  uint8_t* at = element_range(info, b, bytes, "write: ", " do not fit a buffer of ");
  if (bytes) std::memcpy(at, src, bytes);
  return info.Env().Undefined();
}

// read(id, typedArray, offset): fills the array from elements [offset, offset + length)
Napi::Value read(const Napi::CallbackInfo& info) {
  Buffer& b = any_buffer(info, 0);
  auto [dst, bytes] = typed_bytes(info, 1, b.dtype);
  const uint8_t* at = element_range(info, b, bytes, "read: ", " are outside a buffer of ");
  if (bytes) std::memcpy(dst, at, bytes);
  return info.Env().Undefined();
}

// fill(id, value): every element set to value (f32, i32, u8; bf16 from a raw 16-bit pattern)
Napi::Value fill(const Napi::CallbackInfo& info) {
  Buffer& b = any_buffer(info, 0);
  double value = number_arg(info, 1, "value");
  switch (b.dtype) {
    case DType::F32: std::fill_n(static_cast<float*>(b.data), b.count, static_cast<float>(value)); break;
    case DType::I32: std::fill_n(static_cast<int32_t*>(b.data), b.count, static_cast<int32_t>(value)); break;
    case DType::U8: std::fill_n(static_cast<uint8_t*>(b.data), b.count, static_cast<uint8_t>(value)); break;
    case DType::BF16: std::fill_n(static_cast<uint16_t*>(b.data), b.count, static_cast<uint16_t>(value)); break;
  }
  return info.Env().Undefined();
}

// copy(dst, dstOffset, src, srcOffset, count) between buffers of one dtype
Napi::Value copy(const Napi::CallbackInfo& info) {
  Buffer& d = any_buffer(info, 0);
  int64_t doff = int_arg(info, 1, "dstOffset");
  Buffer& s = any_buffer(info, 2);
  int64_t soff = int_arg(info, 3, "srcOffset");
  int64_t n = int_arg(info, 4, "count");
  if (d.dtype != s.dtype) fail(info.Env(), "copy: buffers of different dtypes");
  if (static_cast<size_t>(doff + n) > d.count || static_cast<size_t>(soff + n) > s.count) fail(info.Env(), "copy: range outside a buffer");
  size_t es = dtype_size(d.dtype);
  if (n) std::memmove(static_cast<uint8_t*>(d.data) + doff * es, static_cast<uint8_t*>(s.data) + soff * es, n * es);
  return info.Env().Undefined();
}

Napi::Value memory_stats(const Napi::CallbackInfo& info) {
  MemoryStats s = buffers().stats();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("live", Napi::Number::New(info.Env(), static_cast<double>(s.live)));
  o.Set("peak", Napi::Number::New(info.Env(), static_cast<double>(s.peak)));
  o.Set("buffers", Napi::Number::New(info.Env(), static_cast<double>(s.buffers)));
  return o;
}

Napi::Value reset_peak(const Napi::CallbackInfo& info) {
  buffers().reset_peak();
  return info.Env().Undefined();
}

Napi::Value threads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), thread_count()); }

Napi::Value set_threads(const Napi::CallbackInfo& info) {
  set_thread_count(static_cast<int>(int_arg(info, 0, "threads", 1)));
  return info.Env().Undefined();
}

Napi::Value build_info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const CpuFeatures& f = cpu_features();
  Napi::Object o = Napi::Object::New(env);
  o.Set("simd", simd_level());
  o.Set("cpu", cpu_model_name());
  Napi::Array feats = Napi::Array::New(env);
  uint32_t k = 0;
  for (auto [on, name] : {std::pair{f.avx2, "avx2"}, {f.fma, "fma"}, {f.avx512f, "avx512f"}, {f.avx512bw, "avx512bw"},
                          {f.avx512vl, "avx512vl"}, {f.avx512bf16, "avx512bf16"}}) {
    if (on) feats.Set(k++, name);
  }
  o.Set("features", feats);
  o.Set("gemm", cpu::gemm_implementation ? cpu::gemm_implementation() : "none");
  o.Set("compiler", __VERSION__);
  o.Set("threads", thread_count());
  return o;
}

}  // namespace

void register_buffers(Napi::Env env, Napi::Object exports) {
  set_function(env, exports, "alloc", alloc);
  set_function(env, exports, "view", view);
  set_function(env, exports, "free", free_buffer);
  set_function(env, exports, "write", write);
  set_function(env, exports, "read", read);
  set_function(env, exports, "fill", fill);
  set_function(env, exports, "copy", copy);
  set_function(env, exports, "memoryStats", memory_stats);
  set_function(env, exports, "resetPeak", reset_peak);
  set_function(env, exports, "threads", threads);
  set_function(env, exports, "setThreads", set_threads);
  set_function(env, exports, "buildInfo", build_info);
}

}  // namespace ditty::binding
