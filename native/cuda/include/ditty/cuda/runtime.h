// The one include every CUDA source of ditty starts with (native/cuda/README.md).
// - nvcc (__CUDACC__): the real CUDA runtime, cuda_bf16.h, and the conventions below.
// - g++: the CPU emulator (native/cuda/emu/emu.h) with the same names, so the same .cu file runs on a
//   CPU. Host-only .cpp files of the real GPU build (compiled by the host compiler, not nvcc) define
//   DITTY_CUDA_NATIVE to get the real runtime instead of the emulator.
// Conventions: ditty::cuda::launch(kernel, grid, block, shared_bytes, stream, args...) instead of
// <<<>>>; DITTY_SHARED(type, name, dims) for static and DITTY_DYNAMIC_SHARED(type, name) for dynamic
// shared memory; DITTY_CUDA_CHECK(expr) throws std::runtime_error naming the call and the error.
#pragma once

#include <stdexcept>
#include <string>

#if defined(__CUDACC__) || defined(DITTY_CUDA_NATIVE)
#if defined(DITTY_CUDA_EMU)
#error "DITTY_CUDA_EMU is set, but this file is compiled for the real CUDA runtime"
#endif
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#define DITTY_SHARED(type, name, dims) __shared__ __align__(16) type name dims
// A pointer to the launch's dynamic shared memory (one extern array of raw bytes, so kernels in one
// translation unit may view it as different types).
#define DITTY_DYNAMIC_SHARED(type, name)                                 \
  extern __shared__ __align__(16) unsigned char ditty_dynamic_shared_[]; \
  type* name = reinterpret_cast<type*>(ditty_dynamic_shared_)

#if defined(__CUDACC__)
namespace ditty::cuda {
template <class... P, class... A>
inline void launch(void (*kernel)(P...), dim3 grid, dim3 block, std::size_t shared_bytes, cudaStream_t stream,
                   A&&... args) {
  kernel<<<grid, block, shared_bytes, stream>>>(std::forward<A>(args)...);
}
}  // namespace ditty::cuda
#endif

#else
#include "../../../emu/emu.h"
#endif

namespace ditty::cuda {
[[noreturn]] inline void throw_cuda_error(cudaError_t e, const char* call, const char* file, int line) {
  throw std::runtime_error(std::string(call) + " failed: " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) +
                           ") at " + file + ":" + std::to_string(line));
}
}  // namespace ditty::cuda

// #pragma unroll for nvcc; g++ (the emulated build) would warn about the unknown pragma
#if defined(__CUDACC__)
#define DITTY_UNROLL _Pragma("unroll")
#else
#define DITTY_UNROLL
#endif

#define DITTY_CUDA_CHECK(expr)                                                                  \
  do {                                                                                          \
    const cudaError_t ditty_cuda_check_e_ = (expr);                                             \
    if (ditty_cuda_check_e_ != cudaSuccess)                                                     \
      ::ditty::cuda::throw_cuda_error(ditty_cuda_check_e_, #expr, __FILE__, __LINE__);          \
  } while (0)
