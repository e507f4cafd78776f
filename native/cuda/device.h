// The CUDA device of the native engine as the rest of the addon sees it: plain C++ (no CUDA
// headers), so the bindings compiled by g++ call it the same way in the real and the emulated build.
// The device is initialized on first use; every function but device_info() throws
// std::runtime_error with a one-line reason when there is no usable device.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

// A build of the addon without the CUDA device still compiles the bindings' CUDA branches: there
// these functions are weak and undefined, and never called (no buffer lives on a missing device).
#ifdef DITTY_WITH_CUDA
#define DITTY_CUDA_API
#else
#define DITTY_CUDA_API __attribute__((weak))
#endif

namespace ditty::cuda {

#ifdef DITTY_WITH_CUDA
inline constexpr bool kBuilt = true;
#else
inline constexpr bool kBuilt = false;
#endif

struct DeviceInfo {
  bool available = false;
  std::string reason;  // why not, one line (empty when available)
  std::string name;
  int major = 0, minor = 0;  // compute capability
  size_t total_memory = 0, free_memory = 0;
  int driver_version = 0, runtime_version = 0;  // as CUDA encodes them (13000 = 13.0)
  std::string cublaslt;  // the cuBLASLt library loaded, or why it could not be
  bool cublaslt_loaded = false;
  bool emulated = false;  // the CPU emulation layer, not a GPU
};

// Initializes the device when it has not been tried yet; never throws.
DITTY_CUDA_API DeviceInfo device_info();
// Throws the one-line reason unless the device is usable.
DITTY_CUDA_API void require_device();

// Device memory from the caching allocator, zero-filled, at least 256-byte aligned; freed with device_free.
DITTY_CUDA_API void* device_alloc(size_t bytes);
DITTY_CUDA_API void device_free(void* p);
// Bytes the caching allocator holds from the driver (live and cached blocks), now and at most.
struct ReservedBytes {
  size_t now = 0;
  size_t peak = 0;
};
DITTY_CUDA_API ReservedBytes reserved_bytes();
DITTY_CUDA_API void reset_reserved_peak();

// Copies ordered on the device's one stream; the host-side ones return when the host memory is done with.
DITTY_CUDA_API void copy_to_device(void* dst, const void* src, size_t bytes);
DITTY_CUDA_API void copy_to_host(void* dst, const void* src, size_t bytes);
DITTY_CUDA_API void copy_on_device(void* dst, const void* src, size_t bytes);
// Sets `count` elements of `element_bytes` (1, 2 or 4) to the bit pattern `pattern`.
DITTY_CUDA_API void fill_device(void* dst, size_t count, size_t element_bytes, uint32_t pattern);
// Waits for the stream; throws the first asynchronous error as a one-line message.
DITTY_CUDA_API void synchronize();

}  // namespace ditty::cuda
