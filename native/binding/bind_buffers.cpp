// Buffers (on the CPU or the CUDA device), threads and build facts.
#include <cstring>

#include "args.h"
#include "cuda/device.h"
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

DeviceKind device_arg(const Napi::CallbackInfo& info, size_t i) {
  if (is_absent(info, i)) return DeviceKind::Cpu;
  int64_t d = int_arg(info, i, "device");
  if (d > 1) fail(info.Env(), "device: expected 0 (cpu) or 1 (cuda)");
  return static_cast<DeviceKind>(d);
}

bool on_cuda(const Buffer& b) { return b.device == DeviceKind::Cuda; }

// alloc(dtype, count, device = cpu)
Napi::Value alloc(const Napi::CallbackInfo& info) {
  DType t = dtype_arg(info, 0);
  int64_t count = int_arg(info, 1, "count");
  DeviceKind device = device_arg(info, 2);
  try {
    return Napi::Number::New(info.Env(), buffers().alloc(t, static_cast<size_t>(count), device));
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
  if (bytes && on_cuda(b)) cuda::copy_to_device(at, src, bytes);
  else if (bytes) std::memcpy(at, src, bytes);
  return info.Env().Undefined();
}

// read(id, typedArray, offset): fills the array from elements [offset, offset + length)
Napi::Value read(const Napi::CallbackInfo& info) {
  Buffer& b = any_buffer(info, 0);
  auto [dst, bytes] = typed_bytes(info, 1, b.dtype);
  const uint8_t* at = element_range(info, b, bytes, "read: ", " are outside a buffer of ");
  if (bytes && on_cuda(b)) cuda::copy_to_host(dst, at, bytes);
  else if (bytes) std::memcpy(dst, at, bytes);
  return info.Env().Undefined();
}

// fill(id, value): every element set to value (f32, i32, u8; bf16 from a raw 16-bit pattern)
Napi::Value fill(const Napi::CallbackInfo& info) {
  Buffer& b = any_buffer(info, 0);
  double value = number_arg(info, 1, "value");
  if (on_cuda(b)) {
    uint32_t pattern = 0;
    switch (b.dtype) {
      case DType::F32: {
        const float f = static_cast<float>(value);
        std::memcpy(&pattern, &f, 4);
        break;
      }
      case DType::I32: pattern = static_cast<uint32_t>(static_cast<int32_t>(value)); break;
      case DType::U8: pattern = static_cast<uint8_t>(value); break;
      case DType::BF16: pattern = static_cast<uint16_t>(value); break;
    }
    cuda::fill_device(b.data, b.count, dtype_size(b.dtype), pattern);
    return info.Env().Undefined();
  }
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
  uint8_t* to = static_cast<uint8_t*>(d.data) + doff * es;
  const uint8_t* from = static_cast<uint8_t*>(s.data) + soff * es;
  if (n == 0) return info.Env().Undefined();
  if (on_cuda(d) && on_cuda(s)) cuda::copy_on_device(to, from, n * es);
  else if (on_cuda(d)) cuda::copy_to_device(to, from, n * es);
  else if (on_cuda(s)) cuda::copy_to_host(to, from, n * es);
  else std::memmove(to, from, n * es);
  return info.Env().Undefined();
}

// memoryStats(device = cpu): the device's live buffer bytes; on cuda also what the caching allocator holds
Napi::Value memory_stats(const Napi::CallbackInfo& info) {
  const DeviceKind device = device_arg(info, 0);
  MemoryStats s = buffers().stats(device);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("live", Napi::Number::New(info.Env(), static_cast<double>(s.live)));
  o.Set("peak", Napi::Number::New(info.Env(), static_cast<double>(s.peak)));
  o.Set("buffers", Napi::Number::New(info.Env(), static_cast<double>(s.buffers)));
  if (device == DeviceKind::Cuda && cuda::kBuilt) {
    const cuda::ReservedBytes r = cuda::reserved_bytes();
    o.Set("reserved", Napi::Number::New(info.Env(), static_cast<double>(r.now)));
    o.Set("peakReserved", Napi::Number::New(info.Env(), static_cast<double>(r.peak)));
  }
  return o;
}

Napi::Value reset_peak(const Napi::CallbackInfo& info) {
  const DeviceKind device = device_arg(info, 0);
  buffers().reset_peak(device);
  if (device == DeviceKind::Cuda && cuda::kBuilt) cuda::reset_reserved_peak();
  return info.Env().Undefined();
}

// cudaInfo(): whether this addon has the CUDA device and whether it can run here (initializes it)
Napi::Value cuda_info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  if (!cuda::kBuilt) {
    o.Set("built", false);
    o.Set("available", false);
    o.Set("reason", "the native engine was built without the CUDA device");
    return o;
  }
  const cuda::DeviceInfo d = cuda::device_info();
  o.Set("built", true);
  o.Set("available", d.available);
  o.Set("emulated", d.emulated);
  o.Set("runtimeVersion", d.runtime_version);
  o.Set("driverVersion", d.driver_version);
  if (!d.available) {
    o.Set("reason", d.reason);
    return o;
  }
  o.Set("name", d.name);
  o.Set("capability", std::to_string(d.major) + "." + std::to_string(d.minor));
  o.Set("totalMemory", static_cast<double>(d.total_memory));
  o.Set("freeMemory", static_cast<double>(d.free_memory));
  o.Set("cublasLt", d.cublaslt);
  o.Set("cublasLtLoaded", d.cublaslt_loaded);
  return o;
}

Napi::Value cuda_synchronize(const Napi::CallbackInfo& info) {
  if (cuda::kBuilt && cuda::device_info().available) cuda::synchronize();
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
  set_function(env, exports, "cudaInfo", cuda_info);
  set_function(env, exports, "cudaSynchronize", cuda_synchronize);
  if (cuda::kBuilt) buffers().set_device_memory(DeviceKind::Cuda, {cuda::device_alloc, cuda::device_free});
}

}  // namespace ditty::binding
