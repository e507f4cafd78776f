// The buffers of one kernel call: each argument checked (id, dtype, element count), plus the rule
// that every buffer of a call lives on one device. Activations are f32 on the CPU
// and f32 or bf16 on the CUDA device; parameters, statistics and LoRA tensors are always f32.
// The binding then runs the CPU kernel or, when the buffers are on the CUDA device, the CUDA one
// (native/cuda/bind/ops.h).
#pragma once
#include <string>
#include <vector>

#include "args.h"

namespace ditty::binding {

inline float* fp(Buffer& b) { return static_cast<float*>(b.data); }
inline float* fp(Buffer* b) { return b ? static_cast<float*>(b->data) : nullptr; }

class Call {
 public:
  explicit Call(const Napi::CallbackInfo& info) : info_(info) {}

  Buffer& f32(size_t i, const char* name, int64_t need) { return typed(i, name, DType::F32, need); }
  Buffer* f32_opt(size_t i, const char* name, int64_t need) { return is_absent(info_, i) ? nullptr : &f32(i, name, need); }
  Buffer& i32(size_t i, const char* name, int64_t need) { return typed(i, name, DType::I32, need); }
  Buffer& u8(size_t i, const char* name, int64_t need) { return typed(i, name, DType::U8, need); }
  // f32, or on the CUDA device bf16 too
  Buffer& act(size_t i, const char* name, int64_t need) {
    Buffer& b = lookup(i, name);
    if (b.device == DeviceKind::Cuda && b.dtype == DType::BF16) return sized(b, name, need);
    return checked(b, name, DType::F32, need);
  }
  Buffer* act_opt(size_t i, const char* name, int64_t need) { return is_absent(info_, i) ? nullptr : &act(i, name, need); }
  // An array of buffer ids, each with `need` elements: activations, or f32 parameters.
  std::vector<Buffer*> list(size_t i, const char* name, int64_t need, bool activation) {
    Napi::Value v = arg(info_, i, name);
    if (!v.IsArray()) fail(info_.Env(), std::string(name) + ": expected an array of buffer ids");
    Napi::Array a = v.As<Napi::Array>();
    std::vector<Buffer*> out;
    for (uint32_t k = 0; k < a.Length(); k++) {
      Napi::Value e = a.Get(k);
      if (!e.IsNumber()) fail(info_.Env(), std::string(name) + ": expected buffer ids");
      Buffer& b = place(e.As<Napi::Number>().Int32Value(), name);
      const bool ok = b.dtype == DType::F32 || (activation && b.device == DeviceKind::Cuda && b.dtype == DType::BF16);
      if (!ok || b.count < static_cast<uint64_t>(need)) {
        fail(info_.Env(), std::string(name) + ": buffer " + std::to_string(e.As<Napi::Number>().Int32Value()) + " is not " +
                              (activation ? "an activation" : "f32") + " with " + std::to_string(need) + " elements");
      }
      out.push_back(&b);
    }
    return out;
  }
  // A buffer found another way (an Nf4Handles field): only the one-device rule.
  void place(Buffer& b, const std::string& name) { check_device(b, name); }

  bool cuda() const { return device_ == DeviceKind::Cuda; }
  Napi::Env env() const { return info_.Env(); }

 private:
  Buffer& lookup(size_t i, const char* name) {
    last_id_ = int_arg(info_, i, name, 0);
    return place(static_cast<int32_t>(last_id_), name);
  }
  Buffer& place(int32_t id, const char* name) {
    Buffer* b;
    try {
      b = &buffers().get(id);
    } catch (const std::exception& e) {
      fail(info_.Env(), std::string(name) + ": " + e.what());
    }
    check_device(*b, name);
    return *b;
  }
  void check_device(const Buffer& b, const std::string& name) {
    if (!seen_) {
      seen_ = true;
      device_ = b.device;
      first_ = name;
    } else if (b.device != device_) {
      fail(info_.Env(), name + ": this buffer is on the " + device_name(b.device) + " device, " + first_ + " on the " +
                            device_name(device_) + " device (a call's buffers must all be on one device)");
    }
  }
  static const char* device_name(DeviceKind d) { return d == DeviceKind::Cuda ? "cuda" : "cpu"; }
  Buffer& typed(size_t i, const char* name, DType t, int64_t need) { return checked(lookup(i, name), name, t, need); }
  Buffer& checked(Buffer& b, const char* name, DType t, int64_t need) {
    if (b.dtype != t) {
      fail(info_.Env(), std::string(name) + ": buffer " + std::to_string(last_id_) + " holds " + dtype_name(b.dtype) +
                            ", expected " + dtype_name(t));
    }
    return sized(b, name, need);
  }
  Buffer& sized(Buffer& b, const char* name, int64_t need) {
    if (need < 0 || static_cast<uint64_t>(need) > b.count) {
      fail(info_.Env(), std::string(name) + ": buffer " + std::to_string(last_id_) + " has " + std::to_string(b.count) +
                            " elements, the call needs " + std::to_string(need));
    }
    return b;
  }

  const Napi::CallbackInfo& info_;
  bool seen_ = false;
  DeviceKind device_ = DeviceKind::Cpu;
  std::string first_;
  int64_t last_id_ = -1;  // the id of the buffer being checked, for messages
};

}  // namespace ditty::binding
