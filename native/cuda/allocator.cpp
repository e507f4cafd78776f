#include "allocator.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace ditty::cuda {

namespace {

cudaError_t device_malloc(void** ptr, size_t bytes) { return cudaMalloc(ptr, bytes); }
cudaError_t device_free(void* ptr) { return cudaFree(ptr); }

std::string cuda_error_text(cudaError_t err) {
  return std::string(cudaGetErrorName(err)) + " (" + cudaGetErrorString(err) + ")";
}

void note_peaks(AllocatorStats& s) {
  s.peak_live_bytes = std::max(s.peak_live_bytes, s.live_bytes);
  s.peak_reserved_bytes = std::max(s.peak_reserved_bytes, s.live_bytes + s.cached_bytes);
}

}  // namespace

Allocator::Allocator() : Allocator(device_malloc, device_free) {}

Allocator::Allocator(MallocFn malloc_fn, FreeFn free_fn) : malloc_fn_(malloc_fn), free_fn_(free_fn) {
  if (!malloc_fn_ || !free_fn_) throw std::invalid_argument("ditty::cuda::Allocator: null malloc or free function");
}

Allocator::~Allocator() {
  for (auto& [ptr, size] : live_) (void)free_fn_(ptr);
  for (auto& [size, blocks] : free_)
    for (void* ptr : blocks) (void)free_fn_(ptr);
}

size_t Allocator::size_class(size_t bytes) {
  if (bytes == 0) return 0;
  const size_t granule = bytes <= kSmallLimit ? kSmallGranule : kLargeGranule;
  if (bytes > SIZE_MAX - (granule - 1)) throw_too_large(bytes, 1);
  return (bytes + granule - 1) / granule * granule;
}

void Allocator::throw_too_large(size_t count, size_t size) {
  throw std::runtime_error("CUDA allocation of " + std::to_string(count) + " x " + std::to_string(size) +
                           " bytes overflows size_t");
}

void* Allocator::allocate(size_t bytes) {
  const size_t cls = size_class(bytes);
  if (cls == 0) return nullptr;
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = free_.find(cls); it != free_.end() && !it->second.empty()) {
    void* ptr = it->second.back();
    it->second.pop_back();
    live_.emplace(ptr, cls);
    stats_.cached_bytes -= cls;
    stats_.live_bytes += cls;
    stats_.cache_hits++;
    note_peaks(stats_);
    return ptr;
  }
  const size_t cached_before = stats_.cached_bytes;
  void* ptr = nullptr;
  cudaError_t err = malloc_fn_(&ptr, cls);
  if (err == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // the failed cudaMalloc is also recorded as the last error
    stats_.oom_retries++;
    trim_locked();
    ptr = nullptr;
    err = malloc_fn_(&ptr, cls);
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      throw std::runtime_error("CUDA device out of memory: requested " + std::to_string(bytes) + " bytes (" +
                               std::to_string(cls) + " with rounding) with " + std::to_string(stats_.live_bytes) +
                               " bytes live and " + std::to_string(cached_before) +
                               " cached (the cache was freed and the allocation retried)");
    }
  }
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    throw std::runtime_error("cudaMalloc of " + std::to_string(cls) + " bytes failed: " + cuda_error_text(err));
  }
  live_.emplace(ptr, cls);
  stats_.live_bytes += cls;
  stats_.device_allocs++;
  note_peaks(stats_);
  return ptr;
}

void Allocator::release(void* ptr) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = live_.find(ptr);
  if (it == live_.end()) throw std::invalid_argument("ditty::cuda::Allocator::release: pointer was not allocated here");
  const size_t cls = it->second;
  live_.erase(it);
  free_[cls].push_back(ptr);
  stats_.live_bytes -= cls;
  stats_.cached_bytes += cls;
}

void Allocator::trim() {
  std::lock_guard<std::mutex> lock(mutex_);
  trim_locked();
}

void Allocator::trim_locked() {
  cudaError_t first_error = cudaSuccess;
  for (auto& [cls, blocks] : free_) {
    for (void* ptr : blocks) {
      const cudaError_t err = free_fn_(ptr);
      stats_.device_frees++;
      if (err != cudaSuccess && first_error == cudaSuccess) first_error = err;
      stats_.cached_bytes -= cls;
    }
  }
  free_.clear();
  if (first_error != cudaSuccess) {
    (void)cudaGetLastError();
    throw std::runtime_error("cudaFree failed while trimming the allocator cache: " + cuda_error_text(first_error));
  }
}

AllocatorStats Allocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}
size_t Allocator::live_bytes() const { return stats().live_bytes; }
size_t Allocator::cached_bytes() const { return stats().cached_bytes; }
size_t Allocator::peak_live_bytes() const { return stats().peak_live_bytes; }
size_t Allocator::peak_reserved_bytes() const { return stats().peak_reserved_bytes; }

void Allocator::reset_peaks() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_live_bytes = stats_.live_bytes;
  stats_.peak_reserved_bytes = stats_.live_bytes + stats_.cached_bytes;
}

}  // namespace ditty::cuda
