// A minimal CUDA runtime for the emulator, with the real declarations of cuda_runtime_api.h and its
// error codes: device memory is host memory (256-byte aligned, poisoned, tracked so that a bad free or
// an out-of-range copy is an error), work on any stream runs synchronously, events read host clocks.
#include "emu.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <set>
#include <thread>
#include <unordered_map>

struct CUstream_st {
  unsigned flags;
};
struct CUevent_st {
  std::chrono::steady_clock::time_point when;
  bool recorded;
};

namespace ditty::cuda::emu {
namespace {

constexpr std::size_t kAlign = 256;
constexpr int kDefaultDynamicShared = 48 * 1024;
constexpr int kMaxDynamicShared = 227 * 1024;

struct State {
  std::mutex m;
  std::map<std::uintptr_t, std::size_t> device;  // start -> size
  std::set<void*> host;                          // cudaMallocHost / cudaHostAlloc
  std::set<cudaStream_t> streams;
  std::set<cudaEvent_t> events;
  std::unordered_map<const void*, int> max_dynamic_shared;
  std::size_t device_bytes = 0;
};
State& state() {
  static State* s = new State;  // never destroyed: other static destructors may still free memory
  return *s;
}
thread_local cudaError_t tl_last_error = cudaSuccess;
thread_local int tl_device = 0;

cudaError_t fail(cudaError_t e) {
  tl_last_error = e;
  return e;
}

// The device allocation holding [p, p + n), if any (n = 0: p itself must be inside or at its end).
bool in_device(const void* p, std::size_t n) {
  State& s = state();
  std::lock_guard lock(s.m);
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  auto it = s.device.upper_bound(a);
  if (it == s.device.begin()) return false;
  --it;
  return a >= it->first && a + n <= it->first + it->second && (n > 0 || a <= it->first + it->second);
}

bool valid_kind(cudaMemcpyKind kind) {
  return kind == cudaMemcpyHostToHost || kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToHost ||
         kind == cudaMemcpyDeviceToDevice || kind == cudaMemcpyDefault;
}

cudaError_t copy(void* dst, const void* src, std::size_t count, cudaMemcpyKind kind) {
  if (!valid_kind(kind)) return fail(cudaErrorInvalidMemcpyDirection);
  if (count == 0) return cudaSuccess;
  if (!dst || !src) return fail(cudaErrorInvalidValue);
  const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  // Host memory is not tracked; the device side must lie inside one allocation.
  if (dst_dev && !in_device(dst, count)) return fail(cudaErrorInvalidValue);
  if (src_dev && !in_device(src, count)) return fail(cudaErrorInvalidValue);
  std::memmove(dst, src, count);
  return cudaSuccess;
}

// Streams and events: a new handle joins its set in State (and is returned through `out`); destroying
// one that is not in it is an invalid-handle error.
template <class H>
cudaError_t create_handle(std::set<H> State::*live, H h, H* out) {
  State& st = state();
  std::lock_guard lock(st.m);
  (st.*live).insert(h);
  *out = h;
  return cudaSuccess;
}
template <class H>
cudaError_t destroy_handle(std::set<H> State::*live, H h) {
  State& st = state();
  {
    std::lock_guard lock(st.m);
    if (!(st.*live).erase(h)) return fail(cudaErrorInvalidResourceHandle);
  }
  delete h;
  return cudaSuccess;
}

}  // namespace

bool stream_valid(cudaStream_t s) {
  if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread) return true;
  State& st = state();
  std::lock_guard lock(st.m);
  return st.streams.count(s) != 0;
}
int max_dynamic_shared(const void* kernel) {
  State& s = state();
  std::lock_guard lock(s.m);
  const auto it = s.max_dynamic_shared.find(kernel);
  return it == s.max_dynamic_shared.end() ? kDefaultDynamicShared : it->second;
}
void set_last_error(cudaError_t e) { tl_last_error = e; }

}  // namespace ditty::cuda::emu

using namespace ditty::cuda::emu;

extern "C" {

cudaError_t CUDARTAPI cudaMalloc(void** ptr, size_t size) {
  if (!ptr) return fail(cudaErrorInvalidValue);
  *ptr = nullptr;
  if (size == 0) return cudaSuccess;
  void* p = ::operator new(size, std::align_val_t{kAlign}, std::nothrow);
  if (!p) return fail(cudaErrorMemoryAllocation);
  std::memset(p, 0xff, size);  // uninitialised device memory reads as NaN
  State& s = state();
  {
    std::lock_guard lock(s.m);
    s.device[reinterpret_cast<std::uintptr_t>(p)] = size;
    s.device_bytes += size;
  }
  *ptr = p;
  return cudaSuccess;
}

cudaError_t CUDARTAPI cudaFree(void* ptr) {
  if (!ptr) return cudaSuccess;
  State& s = state();
  {
    std::lock_guard lock(s.m);
    const auto it = s.device.find(reinterpret_cast<std::uintptr_t>(ptr));
    if (it == s.device.end()) return fail(cudaErrorInvalidValue);
    s.device_bytes -= it->second;
    s.device.erase(it);
  }
  ::operator delete(ptr, std::align_val_t{kAlign});
  return cudaSuccess;
}

cudaError_t CUDARTAPI cudaMallocAsync(void** ptr, size_t size, cudaStream_t stream) {
  if (!stream_valid(stream)) return fail(cudaErrorInvalidResourceHandle);
  return cudaMalloc(ptr, size);
}
cudaError_t CUDARTAPI cudaFreeAsync(void* ptr, cudaStream_t stream) {
  if (!stream_valid(stream)) return fail(cudaErrorInvalidResourceHandle);
  return cudaFree(ptr);
}

cudaError_t CUDARTAPI cudaMallocHost(void** ptr, size_t size) {
  if (!ptr) return fail(cudaErrorInvalidValue);
  void* p = ::operator new(std::max<size_t>(size, 1), std::align_val_t{kAlign}, std::nothrow);
  if (!p) return fail(cudaErrorMemoryAllocation);
  State& s = state();
  std::lock_guard lock(s.m);
  s.host.insert(p);
  *ptr = p;
  return cudaSuccess;
}
cudaError_t CUDARTAPI cudaHostAlloc(void** ptr, size_t size, unsigned int) { return cudaMallocHost(ptr, size); }
cudaError_t CUDARTAPI cudaFreeHost(void* ptr) {
  if (!ptr) return cudaSuccess;
  State& s = state();
  {
    std::lock_guard lock(s.m);
    if (!s.host.erase(ptr)) return fail(cudaErrorInvalidValue);
  }
  ::operator delete(ptr, std::align_val_t{kAlign});
  return cudaSuccess;
}

cudaError_t CUDARTAPI cudaMemcpy(void* dst, const void* src, size_t count, enum cudaMemcpyKind kind) {
  return copy(dst, src, count, kind);
}
cudaError_t CUDARTAPI cudaMemcpyAsync(void* dst, const void* src, size_t count, enum cudaMemcpyKind kind,
                                      cudaStream_t stream) {
  if (!stream_valid(stream)) return fail(cudaErrorInvalidResourceHandle);
  return copy(dst, src, count, kind);
}
cudaError_t CUDARTAPI cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width,
                                        size_t height, enum cudaMemcpyKind kind, cudaStream_t stream) {
  if (!stream_valid(stream)) return fail(cudaErrorInvalidResourceHandle);
  if (width > dpitch || width > spitch) return fail(cudaErrorInvalidPitchValue);
  for (size_t r = 0; r < height; ++r) {
    const cudaError_t e = copy(static_cast<char*>(dst) + r * dpitch, static_cast<const char*>(src) + r * spitch, width, kind);
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}
cudaError_t CUDARTAPI cudaMemset(void* ptr, int value, size_t count) {
  if (count == 0) return cudaSuccess;
  if (!in_device(ptr, count)) return fail(cudaErrorInvalidValue);
  std::memset(ptr, value, count);
  return cudaSuccess;
}
cudaError_t CUDARTAPI cudaMemsetAsync(void* ptr, int value, size_t count, cudaStream_t stream) {
  if (!stream_valid(stream)) return fail(cudaErrorInvalidResourceHandle);
  return cudaMemset(ptr, value, count);
}

cudaError_t CUDARTAPI cudaPointerGetAttributes(struct cudaPointerAttributes* attr, const void* ptr) {
  if (!attr) return fail(cudaErrorInvalidValue);
  *attr = {};
  const bool dev = in_device(ptr, 0);
  attr->type = dev ? cudaMemoryTypeDevice : cudaMemoryTypeUnregistered;
  attr->device = 0;
  attr->devicePointer = dev ? const_cast<void*>(ptr) : nullptr;
  attr->hostPointer = dev ? nullptr : const_cast<void*>(ptr);
  return cudaSuccess;
}

cudaError_t CUDARTAPI cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  if (!stream) return fail(cudaErrorInvalidValue);
  return create_handle(&State::streams, new CUstream_st{flags}, stream);
}
cudaError_t CUDARTAPI cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, 0); }
cudaError_t CUDARTAPI cudaStreamDestroy(cudaStream_t stream) { return destroy_handle(&State::streams, stream); }
cudaError_t CUDARTAPI cudaStreamSynchronize(cudaStream_t stream) {
  return stream_valid(stream) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}
cudaError_t CUDARTAPI cudaStreamQuery(cudaStream_t stream) {
  return stream_valid(stream) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}
cudaError_t CUDARTAPI cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int) {
  if (!stream_valid(stream)) return fail(cudaErrorInvalidResourceHandle);
  State& st = state();
  std::lock_guard lock(st.m);
  return st.events.count(event) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}
cudaError_t CUDARTAPI cudaDeviceSynchronize(void) { return cudaSuccess; }
cudaError_t CUDARTAPI cudaDeviceReset(void) { return cudaSuccess; }

cudaError_t CUDARTAPI cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int) {
  if (!event) return fail(cudaErrorInvalidValue);
  return create_handle(&State::events, new CUevent_st{{}, false}, event);
}
cudaError_t CUDARTAPI cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, 0); }
cudaError_t CUDARTAPI cudaEventDestroy(cudaEvent_t event) { return destroy_handle(&State::events, event); }
cudaError_t CUDARTAPI cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (!stream_valid(stream)) return fail(cudaErrorInvalidResourceHandle);
  State& st = state();
  std::lock_guard lock(st.m);
  if (!st.events.count(event)) return fail(cudaErrorInvalidResourceHandle);
  event->when = std::chrono::steady_clock::now();
  event->recorded = true;
  return cudaSuccess;
}
cudaError_t CUDARTAPI cudaEventSynchronize(cudaEvent_t event) {
  State& st = state();
  std::lock_guard lock(st.m);
  return st.events.count(event) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}
cudaError_t CUDARTAPI cudaEventQuery(cudaEvent_t event) { return cudaEventSynchronize(event); }
cudaError_t CUDARTAPI cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!ms) return fail(cudaErrorInvalidValue);
  State& st = state();
  std::lock_guard lock(st.m);
  if (!st.events.count(start) || !st.events.count(end)) return fail(cudaErrorInvalidResourceHandle);
  if (!start->recorded || !end->recorded) return fail(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(end->when - start->when).count();
  return cudaSuccess;
}

cudaError_t CUDARTAPI cudaGetLastError(void) {
  const cudaError_t e = tl_last_error;
  tl_last_error = cudaSuccess;
  return e;
}
cudaError_t CUDARTAPI cudaPeekAtLastError(void) { return tl_last_error; }

const char* CUDARTAPI cudaGetErrorName(cudaError_t error) {
  switch (error) {
#define DITTY_EMU_ERROR(name) \
  case name: return #name;
    DITTY_EMU_ERROR(cudaSuccess)
    DITTY_EMU_ERROR(cudaErrorInvalidValue)
    DITTY_EMU_ERROR(cudaErrorMemoryAllocation)
    DITTY_EMU_ERROR(cudaErrorInitializationError)
    DITTY_EMU_ERROR(cudaErrorInvalidConfiguration)
    DITTY_EMU_ERROR(cudaErrorInvalidPitchValue)
    DITTY_EMU_ERROR(cudaErrorInvalidMemcpyDirection)
    DITTY_EMU_ERROR(cudaErrorInsufficientDriver)
    DITTY_EMU_ERROR(cudaErrorNoDevice)
    DITTY_EMU_ERROR(cudaErrorInvalidDevice)
    DITTY_EMU_ERROR(cudaErrorInvalidResourceHandle)
    DITTY_EMU_ERROR(cudaErrorNotReady)
    DITTY_EMU_ERROR(cudaErrorIllegalAddress)
    DITTY_EMU_ERROR(cudaErrorLaunchOutOfResources)
    DITTY_EMU_ERROR(cudaErrorLaunchFailure)
    DITTY_EMU_ERROR(cudaErrorNotSupported)
    DITTY_EMU_ERROR(cudaErrorInvalidDeviceFunction)
    DITTY_EMU_ERROR(cudaErrorUnknown)
#undef DITTY_EMU_ERROR
    default: return "cudaErrorUnknown";
  }
}
const char* CUDARTAPI cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidPitchValue: return "invalid pitch argument";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    default: return "unknown error";
  }
}

cudaError_t CUDARTAPI cudaGetDeviceCount(int* count) {
  if (!count) return fail(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}
cudaError_t CUDARTAPI cudaSetDevice(int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice);
  tl_device = device;
  return cudaSuccess;
}
cudaError_t CUDARTAPI cudaGetDevice(int* device) {
  if (!device) return fail(cudaErrorInvalidValue);
  *device = tl_device;
  return cudaSuccess;
}

namespace {
std::size_t physical_memory() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<std::size_t>(pages) * static_cast<std::size_t>(page) : std::size_t{1} << 34;
}
int sm_count() { return static_cast<int>(ditty::cuda::emu::threads()); }
}  // namespace

cudaError_t CUDARTAPI cudaGetDeviceProperties(struct cudaDeviceProp* prop, int device) {
  if (!prop) return fail(cudaErrorInvalidValue);
  if (device != 0) return fail(cudaErrorInvalidDevice);
  *prop = {};
  std::snprintf(prop->name, sizeof prop->name, "ditty CPU emulator");
  prop->totalGlobalMem = physical_memory();
  prop->sharedMemPerBlock = 48 * 1024;
  prop->sharedMemPerBlockOptin = kMaxDynamicShared;
  prop->sharedMemPerMultiprocessor = 228 * 1024;
  prop->regsPerBlock = 65536;
  prop->regsPerMultiprocessor = 65536;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = 1024;
  prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 2147483647;
  prop->maxGridSize[1] = 65535;
  prop->maxGridSize[2] = 65535;
  prop->totalConstMem = 64 * 1024;
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = sm_count();
  prop->maxThreadsPerMultiProcessor = 2048;
  prop->maxBlocksPerMultiProcessor = 32;
  prop->l2CacheSize = 50 * 1024 * 1024;
  prop->memoryBusWidth = 5120;
  prop->unifiedAddressing = 1;
  prop->concurrentKernels = 1;
  prop->memoryPoolsSupported = 1;
  return cudaSuccess;
}

cudaError_t CUDARTAPI cudaDeviceGetAttribute(int* value, enum cudaDeviceAttr attr, int device) {
  if (!value) return fail(cudaErrorInvalidValue);
  if (device != 0) return fail(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; break;
    case cudaDevAttrMaxBlockDimX: *value = 1024; break;
    case cudaDevAttrMaxBlockDimY: *value = 1024; break;
    case cudaDevAttrMaxBlockDimZ: *value = 64; break;
    case cudaDevAttrMaxGridDimX: *value = 2147483647; break;
    case cudaDevAttrMaxGridDimY: *value = 65535; break;
    case cudaDevAttrMaxGridDimZ: *value = 65535; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = 48 * 1024; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = kMaxDynamicShared; break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *value = 228 * 1024; break;
    case cudaDevAttrWarpSize: *value = 32; break;
    case cudaDevAttrMultiProcessorCount: *value = sm_count(); break;
    case cudaDevAttrComputeCapabilityMajor: *value = 9; break;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; break;
    case cudaDevAttrMaxRegistersPerBlock: *value = 65536; break;
    case cudaDevAttrMaxThreadsPerMultiProcessor: *value = 2048; break;
    case cudaDevAttrL2CacheSize: *value = 50 * 1024 * 1024; break;
    default: *value = 0; break;
  }
  return cudaSuccess;
}

cudaError_t CUDARTAPI cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  if (!free_bytes || !total_bytes) return fail(cudaErrorInvalidValue);
  const std::size_t total = physical_memory();
  std::size_t used = 0;
  {
    State& s = state();
    std::lock_guard lock(s.m);
    used = s.device_bytes;
  }
  *total_bytes = total;
  *free_bytes = used < total ? total - used : 0;
  return cudaSuccess;
}

cudaError_t CUDARTAPI cudaDriverGetVersion(int* version) {
  if (!version) return fail(cudaErrorInvalidValue);
  *version = CUDART_VERSION;
  return cudaSuccess;
}
cudaError_t CUDARTAPI cudaRuntimeGetVersion(int* version) {
  if (!version) return fail(cudaErrorInvalidValue);
  *version = CUDART_VERSION;
  return cudaSuccess;
}

cudaError_t CUDARTAPI cudaFuncSetAttribute(const void* func, enum cudaFuncAttribute attr, int value) {
  if (!func) return fail(cudaErrorInvalidDeviceFunction);
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    if (value < 0 || value > kMaxDynamicShared) return fail(cudaErrorInvalidValue);
    State& s = state();
    std::lock_guard lock(s.m);
    s.max_dynamic_shared[func] = value;
  }
  return cudaSuccess;
}

cudaError_t CUDARTAPI cudaFuncGetAttributes(struct cudaFuncAttributes* attr, const void* func) {
  if (!attr) return fail(cudaErrorInvalidValue);
  if (!func) return fail(cudaErrorInvalidDeviceFunction);
  *attr = {};
  attr->maxThreadsPerBlock = 1024;
  attr->maxDynamicSharedSizeBytes = max_dynamic_shared(func);
  attr->ptxVersion = 90;
  attr->binaryVersion = 90;
  return cudaSuccess;
}

cudaError_t CUDARTAPI cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, const void* func, int block_size,
                                                                   size_t dynamic_shared) {
  if (!blocks || block_size <= 0) return fail(cudaErrorInvalidValue);
  if (!func) return fail(cudaErrorInvalidDeviceFunction);
  // the thread and shared-memory limits of the emulated device (registers are not modelled)
  int n = std::min(32, 2048 / block_size);
  if (dynamic_shared > 0) n = std::min<int>(n, static_cast<int>((228 * 1024) / (dynamic_shared + 1024)));
  *blocks = std::max(n, 0);
  return cudaSuccess;
}

}  // extern "C"
