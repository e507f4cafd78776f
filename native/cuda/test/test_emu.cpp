// Self-tests of the CUDA emulator (native/cuda/emu): schedules, shared memory, warp collectives and
// their error reports, bf16, the fake runtime.
#include <ditty/cuda/runtime.h>
#include <ditty/cuda/testing.h>

namespace t = ditty::cuda::testing;

namespace {

__global__ void block_sums(const float* x, float* out, int n) {
  DITTY_SHARED(float, part, [32]);
  float v = 0;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) v += x[i];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x < 32) {
    float w = threadIdx.x < blockDim.x / 32 ? part[threadIdx.x] : 0.f;
    for (int o = 16; o > 0; o >>= 1) w += __shfl_down_sync(0xffffffffu, w, o);
    if (threadIdx.x == 0) out[blockIdx.x] = w;
  }
}

}  // namespace

DITTY_TEST(shuffle_reduction_is_bitwise_equal_across_schedules) {
  const int n = t::quick() ? 5003 : 100003, blocks = 13;
  auto x = t::upload(t::normal(n, 1.f, 1));
  auto out = t::device_array<float>(blocks);
  auto sums = t::same_under_all_schedules("block_sums", [&] {
    ditty::cuda::launch(block_sums, blocks, 256, 0, nullptr, x.get(), out.get(), n);
    DITTY_CUDA_CHECK(cudaGetLastError());
    return t::download(out);
  });
  DITTY_EXPECT(sums.size() == 13u);
  DITTY_EXPECT(t::schedules().size() == 5u, t::schedules().size());
}

DITTY_TEST_MAIN()
