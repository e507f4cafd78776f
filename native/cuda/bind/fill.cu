// fill_device (cuda/device.h): a byte pattern through cudaMemsetAsync, anything else through a
// grid-stride kernel.
#include <algorithm>

#include "cuda/context.h"
#include "cuda/device.h"

namespace ditty::cuda {
namespace {

template <class T>
__global__ void __launch_bounds__(256) fill_kernel(T* dst, int64_t n, T value) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    dst[i] = value;
  }
}

template <class T>
void fill(void* dst, size_t count, T value, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>(std::min<size_t>((count + 255) / 256, 4096));
  launch(fill_kernel<T>, dim3(blocks), dim3(256), 0, stream, static_cast<T*>(dst), static_cast<int64_t>(count), value);
  DITTY_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void fill_device(void* dst, size_t count, size_t element_bytes, uint32_t pattern) {
  if (count == 0) return;
  cudaStream_t stream = context().stream;
  const uint8_t byte = static_cast<uint8_t>(pattern);
  const bool bytewise = (element_bytes == 1) || (element_bytes == 2 && pattern == (byte * 0x0101u)) ||
                        (element_bytes == 4 && pattern == (byte * 0x01010101u));
  if (bytewise) {
    DITTY_CUDA_CHECK(cudaMemsetAsync(dst, byte, count * element_bytes, stream));
  } else if (element_bytes == 2) {
    fill<uint16_t>(dst, count, static_cast<uint16_t>(pattern), stream);
  } else {
    fill<uint32_t>(dst, count, pattern, stream);
  }
}

}  // namespace ditty::cuda
