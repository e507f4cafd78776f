// The CUDA device: initialized on first use (device 0 of those CUDA_VISIBLE_DEVICES shows), one
// non-blocking stream, the caching allocator, cuBLASLt loaded on first use, scratch areas.
// A machine without a driver gets one line (error 35 from the statically linked runtime).
#include <array>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "cuda/allocator.h"
#include "cuda/context.h"
#include "cuda/cublaslt.h"
#include "cuda/device.h"

#ifdef DITTY_CUDA_EMU  // set by the emulator (ditty/cuda/runtime.h under g++)
constexpr bool kEmulated = true;
#else
constexpr bool kEmulated = false;
#endif

namespace ditty::cuda {
namespace {

std::string cuda_error(cudaError_t e) {
  return "CUDA error " + std::to_string(static_cast<int>(e)) + ": " + cudaGetErrorString(e);
}

[[noreturn]] void fail(const char* what, cudaError_t e) {
  throw std::runtime_error(std::string(what) + " failed (" + cuda_error(e) + ")");
}

void check(const char* what, cudaError_t e) {
  if (e != cudaSuccess) fail(what, e);
}

std::string init_failure(cudaError_t e) {
  switch (e) {
    case cudaErrorInsufficientDriver: return "no usable NVIDIA driver (" + cuda_error(e) + ")";
    case cudaErrorNoDevice: return "no NVIDIA GPU found (" + cuda_error(e) + ")";
    default: return "the CUDA device could not be initialized (" + cuda_error(e) + ")";
  }
}

struct State {
  std::once_flag once;
  DeviceInfo info;
  Context context;
  std::unique_ptr<Allocator> allocator;
  std::unique_ptr<Blas> blas;
  std::array<void*, 4> scratch{};
  std::array<size_t, 4> scratch_bytes{};
};

// Never destroyed: at process exit the CUDA runtime and cuBLASLt may be gone before static destructors run.
State& state() {
  static State* s = new State;
  return *s;
}

void init(State& s) {
  DeviceInfo& info = s.info;
  cudaRuntimeGetVersion(&info.runtime_version);
  info.emulated = kEmulated;
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    info.reason = init_failure(e);
    return;
  }
  cudaDriverGetVersion(&info.driver_version);
  if (count == 0) {
    info.reason = init_failure(cudaErrorNoDevice);
    return;
  }
  cudaDeviceProp prop{};
  if ((e = cudaSetDevice(0)) != cudaSuccess || (e = cudaGetDeviceProperties(&prop, 0)) != cudaSuccess ||
      (e = cudaStreamCreateWithFlags(&s.context.stream, cudaStreamNonBlocking)) != cudaSuccess ||
      (e = cudaMemGetInfo(&info.free_memory, &info.total_memory)) != cudaSuccess) {
    cudaGetLastError();
    info.reason = init_failure(e);
    return;
  }
  info.name = prop.name;
  info.major = prop.major;
  info.minor = prop.minor;
  if (info.major < 8) {
    info.reason = "the GPU " + info.name + " has compute capability " + std::to_string(info.major) + "." + std::to_string(info.minor) +
                  "; ditty's CUDA device needs 8.0 or newer (bf16)";
    return;
  }
  s.allocator = std::make_unique<Allocator>();
  info.available = true;
}

State& ready() {
  State& s = state();
  std::call_once(s.once, init, s);
  if (!s.info.available) throw std::runtime_error(s.info.reason);
  return s;
}

}  // namespace

DeviceInfo device_info() {
  State& s = state();
  std::call_once(s.once, init, s);
  DeviceInfo info = s.info;
  if (info.available) {
    cudaMemGetInfo(&info.free_memory, &info.total_memory);
    try {
      const lt::Api& api = s.context.blas().library();
      info.cublaslt = api.path + " (version " + std::to_string(api.version) + ")";
      info.cublaslt_loaded = true;
    } catch (const std::exception& e) {
      info.cublaslt = e.what();
    }
  }
  return info;
}

void require_device() { ready(); }

Context& context() { return ready().context; }

Blas& Context::blas() {
  State& s = state();
  // a failed load throws each time (lt::load says why); a loaded library is kept
  if (!s.blas) s.blas = std::make_unique<Blas>(*s.allocator, stream);
  return *s.blas;
}

void* device_alloc(size_t bytes) {
  State& s = ready();
  void* p = s.allocator->allocate(bytes);
  if (p) {
    cudaError_t e = cudaMemsetAsync(p, 0, bytes, s.context.stream);
    if (e != cudaSuccess) {
      s.allocator->release(p);
      fail("cudaMemsetAsync", e);
    }
  }
  return p;
}

void device_free(void* p) {
  if (p) ready().allocator->release(p);
}

ReservedBytes reserved_bytes() {
  State& s = state();
  if (!s.allocator) return {};
  AllocatorStats a = s.allocator->stats();
  return {a.live_bytes + a.cached_bytes, a.peak_reserved_bytes};
}

void reset_reserved_peak() {
  State& s = state();
  if (s.allocator) s.allocator->reset_peaks();
}

void* Context::scratch(int slot, size_t bytes) {
  State& s = state();
  if (slot < 0 || slot >= static_cast<int>(s.scratch.size())) throw std::logic_error("scratch slot out of range");
  if (s.scratch_bytes[slot] < bytes) {
    device_free(s.scratch[slot]);
    s.scratch[slot] = nullptr;
    s.scratch_bytes[slot] = 0;
    s.scratch[slot] = device_alloc(bytes);
    s.scratch_bytes[slot] = bytes;
  }
  return s.scratch[slot];
}

void copy_to_device(void* dst, const void* src, size_t bytes) {
  cudaStream_t st = context().stream;
  check("cudaMemcpyAsync (host to device)", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, st));
  check("cudaStreamSynchronize", cudaStreamSynchronize(st));
}

void copy_to_host(void* dst, const void* src, size_t bytes) {
  cudaStream_t st = context().stream;
  check("cudaMemcpyAsync (device to host)", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, st));
  check("cudaStreamSynchronize", cudaStreamSynchronize(st));
}

void copy_on_device(void* dst, const void* src, size_t bytes) {
  check("cudaMemcpyAsync (device to device)", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, context().stream));
}

void synchronize() { check("cudaStreamSynchronize", cudaStreamSynchronize(context().stream)); }

}  // namespace ditty::cuda
