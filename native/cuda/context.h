// The CUDA device's state for the code that launches work (native/cuda/bind): the one stream,
// the cuBLASLt handle and a reusable scratch area. Includes the CUDA runtime (or the emulator).
#pragma once
#include <cstddef>

#include "ditty/cuda/runtime.h"

namespace ditty::cuda {

class Blas;

struct Context {
  cudaStream_t stream = nullptr;
  // The cuBLASLt wrapper; throws the one-line reason when the library cannot be loaded.
  Blas& blas();
  // Device scratch area number `slot` (0..3) of at least `bytes`, grown as needed and kept for the
  // next call. Work on the one stream is ordered, so a call may reuse what the last one used.
  void* scratch(int slot, size_t bytes);
};

// The initialized device's context; throws the one-line reason when there is no usable device.
Context& context();

}  // namespace ditty::cuda
