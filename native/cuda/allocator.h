// A caching device allocator over cudaMalloc/cudaFree (which are slow and synchronise the device).
// Requests are rounded to a size class (512 bytes up to kSmallLimit, 2 MiB above); a released
// block goes to the free list of its class and is handed out again for the next request of that
// class. No splitting or merging. Blocks are reused in host order: the engine runs everything on
// one stream, so a block released after its last use was queued is safe to hand to the next
// kernel on that stream.
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "ditty/cuda/runtime.h"

namespace ditty::cuda {

struct AllocatorStats {
  size_t live_bytes = 0;           // handed out and not released (size-class bytes)
  size_t cached_bytes = 0;         // released, held in the free lists
  size_t peak_live_bytes = 0;      // highest live_bytes since construction / reset_peaks()
  size_t peak_reserved_bytes = 0;  // highest live + cached: the device memory actually held
  size_t device_allocs = 0;        // successful calls of the malloc function
  size_t device_frees = 0;         // calls of the free function
  size_t cache_hits = 0;           // requests served from a free list
  size_t oom_retries = 0;          // out-of-memory failures that trimmed the cache and retried
};

class Allocator {
 public:
  using MallocFn = cudaError_t (*)(void** ptr, size_t bytes);
  using FreeFn = cudaError_t (*)(void* ptr);

  static constexpr size_t kSmallGranule = 512;
  static constexpr size_t kLargeGranule = size_t{2} << 20;
  static constexpr size_t kSmallLimit = size_t{1} << 20;

  Allocator();  // cudaMalloc / cudaFree
  // Injectable device functions (tests simulate a memory limit with them).
  Allocator(MallocFn malloc_fn, FreeFn free_fn);
  // Frees every block it holds, live ones included; errors are ignored (the runtime may already
  // be unloading at process exit).
  ~Allocator();
  Allocator(const Allocator&) = delete;
  Allocator& operator=(const Allocator&) = delete;

  // The size class of a request: 0 for 0, else a multiple of 512 (<= 1 MiB) or of 2 MiB.
  static size_t size_class(size_t bytes);

  // A block of at least `bytes` (nullptr for 0), 256-byte aligned as cudaMalloc's are. On
  // cudaErrorMemoryAllocation it trims the cache and retries once; if that fails too it throws
  // std::runtime_error with the request and the live/cached bytes. Other CUDA errors throw too.
  void* allocate(size_t bytes);
  template <class T>
  T* allocate_n(size_t count) {
    if (count > SIZE_MAX / sizeof(T)) throw_too_large(count, sizeof(T));
    return static_cast<T*>(allocate(count * sizeof(T)));
  }
  // Back to its free list; nullptr is ignored; a pointer this allocator did not hand out throws
  // std::invalid_argument.
  void release(void* ptr);
  // Frees every cached block (cudaFree); live blocks are untouched.
  void trim();

  AllocatorStats stats() const;
  size_t live_bytes() const;
  size_t cached_bytes() const;
  size_t peak_live_bytes() const;
  size_t peak_reserved_bytes() const;
  // Peaks restart from the current live / live + cached bytes.
  void reset_peaks();

 private:
  [[noreturn]] static void throw_too_large(size_t count, size_t size);
  void trim_locked();

  MallocFn malloc_fn_;
  FreeFn free_fn_;
  mutable std::mutex mutex_;
  std::unordered_map<void*, size_t> live_;                 // pointer -> size class
  std::unordered_map<size_t, std::vector<void*>> free_;    // size class -> cached blocks
  AllocatorStats stats_;
};

}  // namespace ditty::cuda
