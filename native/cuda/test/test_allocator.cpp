// The caching device allocator: size classes, reuse, counters, trim, and out-of-memory handling
// (trim and retry once, then a message with the request and what is live/cached), on an injected
// device with a memory limit and on the CUDA runtime (a GPU or the emulator).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "../allocator.h"
#include "ditty/cuda/testing.h"

using ditty::cuda::Allocator;

namespace {


// A device with `limit` bytes.
struct FakeDevice {
  size_t limit = 0;
  size_t used = 0;
  size_t mallocs = 0, failures = 0, frees = 0;
  std::map<void*, size_t> blocks;
};
FakeDevice g_dev;

cudaError_t fake_malloc(void** ptr, size_t bytes) {
  if (g_dev.used + bytes > g_dev.limit) {
    g_dev.failures++;
    *ptr = nullptr;
    return cudaErrorMemoryAllocation;
  }
  *ptr = std::aligned_alloc(256, bytes);
  if (!*ptr) return cudaErrorMemoryAllocation;
  g_dev.used += bytes;
  g_dev.mallocs++;
  g_dev.blocks[*ptr] = bytes;
  return cudaSuccess;
}
cudaError_t fake_free(void* ptr) {
  const auto it = g_dev.blocks.find(ptr);
  if (it == g_dev.blocks.end()) return cudaErrorInvalidValue;
  g_dev.used -= it->second;
  g_dev.blocks.erase(it);
  g_dev.frees++;
  std::free(ptr);
  return cudaSuccess;
}
void reset_device(size_t limit) { g_dev = FakeDevice{limit, 0, 0, 0, 0, {}}; }

constexpr size_t MiB = size_t{1} << 20;

void test_size_classes() {
  DITTY_EXPECT_EQ(Allocator::size_class(0), size_t{0});
  DITTY_EXPECT_EQ(Allocator::size_class(1), size_t{512});
  DITTY_EXPECT_EQ(Allocator::size_class(512), size_t{512});
  DITTY_EXPECT_EQ(Allocator::size_class(513), size_t{1024});
  DITTY_EXPECT_EQ(Allocator::size_class(MiB - 1), MiB);
  DITTY_EXPECT_EQ(Allocator::size_class(MiB), MiB);
  DITTY_EXPECT_EQ(Allocator::size_class(MiB + 1), 2 * MiB);
  DITTY_EXPECT_EQ(Allocator::size_class(3 * MiB), 4 * MiB);
  DITTY_EXPECT_EQ(Allocator::size_class(4 * MiB + 1), 6 * MiB);
  DITTY_EXPECT_THROWS(Allocator::size_class(SIZE_MAX), "overflows");
}

void test_reuse_and_counters() {
  reset_device(64 * MiB);
  {
    Allocator a(fake_malloc, fake_free);
    void* p = a.allocate(1000);  // class 1024
    DITTY_EXPECT(p != nullptr);
    DITTY_EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 256, uintptr_t{0});
    DITTY_EXPECT_EQ(a.live_bytes(), size_t{1024});
    DITTY_EXPECT_EQ(a.cached_bytes(), size_t{0});
    a.release(p);
    DITTY_EXPECT_EQ(a.live_bytes(), size_t{0});
    DITTY_EXPECT_EQ(a.cached_bytes(), size_t{1024});
    void* q = a.allocate(900);  // same class: the cached block
    DITTY_EXPECT(q == p);
    DITTY_EXPECT_EQ(g_dev.mallocs, size_t{1});
    DITTY_EXPECT_EQ(a.stats().cache_hits, size_t{1});
    void* r = a.allocate(100);  // class 512: a new block
    DITTY_EXPECT(r != p);
    DITTY_EXPECT_EQ(g_dev.mallocs, size_t{2});
    void* big = a.allocate(3 * MiB);  // class 4 MiB
    DITTY_EXPECT_EQ(g_dev.blocks[big], 4 * MiB);
    DITTY_EXPECT_EQ(a.live_bytes(), 1024 + 512 + 4 * MiB);
    DITTY_EXPECT_EQ(a.peak_live_bytes(), 1024 + 512 + 4 * MiB);
    a.release(big);
    a.release(q);
    DITTY_EXPECT_EQ(a.live_bytes(), size_t{512});
    DITTY_EXPECT_EQ(a.cached_bytes(), 1024 + 4 * MiB);
    DITTY_EXPECT_EQ(a.peak_live_bytes(), 1024 + 512 + 4 * MiB);
    DITTY_EXPECT_EQ(a.peak_reserved_bytes(), 1024 + 512 + 4 * MiB);
    void* big2 = a.allocate(4 * MiB - 5);  // same 4 MiB class
    DITTY_EXPECT(big2 == big);
    DITTY_EXPECT_EQ(a.stats().device_allocs, size_t{3});
    a.reset_peaks();
    DITTY_EXPECT_EQ(a.peak_live_bytes(), 512 + 4 * MiB);
    DITTY_EXPECT_EQ(a.peak_reserved_bytes(), 512 + 1024 + 4 * MiB);

    DITTY_EXPECT(a.allocate(0) == nullptr);
    a.release(nullptr);
    int not_ours = 0;
    DITTY_EXPECT_THROWS(a.release(&not_ours), "not allocated here");
    DITTY_EXPECT_THROWS(a.allocate_n<double>(SIZE_MAX / 4), "overflows");

    // trim frees the cached blocks only
    a.trim();
    DITTY_EXPECT_EQ(a.cached_bytes(), size_t{0});
    DITTY_EXPECT_EQ(a.live_bytes(), 512 + 4 * MiB);
    DITTY_EXPECT_EQ(g_dev.used, 512 + 4 * MiB);
    DITTY_EXPECT_EQ(a.stats().device_frees, size_t{1});
    a.release(big2);
    // live blocks are still freed by the destructor: r stays live
  }
  DITTY_EXPECT_EQ(g_dev.used, size_t{0});
  DITTY_EXPECT(g_dev.blocks.empty());
}

void test_oom_retry() {
  reset_device(8 * MiB);
  Allocator a(fake_malloc, fake_free);
  void* x = a.allocate(6 * MiB);
  a.release(x);  // 6 MiB cached
  void* y = a.allocate(4 * MiB);  // fails (6 + 4 > 8), trims, succeeds
  DITTY_EXPECT(y != nullptr);
  DITTY_EXPECT_EQ(g_dev.failures, size_t{1});
  DITTY_EXPECT_EQ(a.stats().oom_retries, size_t{1});
  DITTY_EXPECT_EQ(a.cached_bytes(), size_t{0});
  DITTY_EXPECT_EQ(a.live_bytes(), 4 * MiB);
  DITTY_EXPECT_EQ(g_dev.used, 4 * MiB);
  DITTY_EXPECT_EQ(a.peak_reserved_bytes(), 6 * MiB);

  // Nothing to trim: fails twice, then throws with the numbers; the allocator stays usable.
  void* z = a.allocate(MiB);  // 1 MiB live, 5 MiB used
  a.release(z);               // 1 MiB cached
  const std::string msg = DITTY_EXPECT_THROWS(a.allocate(5 * MiB), "out of memory");
  DITTY_EXPECT_CONTAINS(msg, "requested 5242880 bytes");
  DITTY_EXPECT_CONTAINS(msg, "6291456 with rounding");
  DITTY_EXPECT_CONTAINS(msg, "4194304 bytes live");
  DITTY_EXPECT_CONTAINS(msg, "1048576 cached");
  DITTY_EXPECT(msg.find('\n') == std::string::npos);
  DITTY_EXPECT_EQ(g_dev.failures, size_t{3});
  DITTY_EXPECT_EQ(a.cached_bytes(), size_t{0});
  DITTY_EXPECT_EQ(a.live_bytes(), 4 * MiB);
  a.release(y);
  void* w = a.allocate(5 * MiB);  // the cached 4 MiB block is the wrong class: trimmed, then fits
  DITTY_EXPECT(w != nullptr);
  DITTY_EXPECT_EQ(a.live_bytes(), 6 * MiB);
  DITTY_EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

// The same allocator over the CUDA runtime (a GPU, or the emulator's host memory).
void test_cuda_runtime() {
  Allocator a;
  const size_t n = 1000;
  float* d = a.allocate_n<float>(n);
  std::vector<float> h(n), back(n);
  for (size_t i = 0; i < n; i++) h[i] = static_cast<float>(i) * 0.5f;
  DITTY_EXPECT_EQ(cudaMemcpy(d, h.data(), n * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  DITTY_EXPECT_EQ(cudaMemcpy(back.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  DITTY_EXPECT(std::memcmp(h.data(), back.data(), n * sizeof(float)) == 0);
  a.release(d);
  float* e = a.allocate_n<float>(n - 10);
  DITTY_EXPECT(e == d);
  DITTY_EXPECT_EQ(a.stats().device_allocs, size_t{1});
  a.release(e);
  a.trim();
  DITTY_EXPECT_EQ(a.cached_bytes(), size_t{0});
  DITTY_EXPECT_EQ(a.stats().device_frees, size_t{1});

  // More than any device has: cudaMalloc fails, the allocator trims, retries and explains; the
  // error is not left behind for the next CUDA call. Not under the sanitizers (DITTY_EMU_QUICK):
  // ASan aborts on such a request and compute-sanitizer counts the failed cudaMalloc as an error.
#if !defined(__SANITIZE_ADDRESS__)
  if (ditty::cuda::testing::quick()) return;
  void* keep = a.allocate(4096);
  const std::string msg = DITTY_EXPECT_THROWS(a.allocate(size_t{1} << 52), "out of memory");
  DITTY_EXPECT_CONTAINS(msg, "requested 4503599627370496 bytes");
  DITTY_EXPECT_CONTAINS(msg, "4096 bytes live");
  DITTY_EXPECT_EQ(a.stats().oom_retries, size_t{1});
  DITTY_EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  a.release(keep);
#endif
}

}  // namespace

DITTY_TEST(allocator_size_classes) { test_size_classes(); }
DITTY_TEST(allocator_reuse_counters_trim) { test_reuse_and_counters(); }
DITTY_TEST(allocator_oom_trims_and_retries_once) { test_oom_retry(); }
DITTY_TEST(allocator_on_cuda_runtime) { test_cuda_runtime(); }

DITTY_TEST_MAIN()
