// Self-tests of the CUDA emulator (native/cuda/emu): schedules (including the warp-ahead ones catching
// a missing __syncthreads), shared-memory poisoning, warp collectives and the errors they report, bf16,
// launch configuration errors and the fake runtime. Only meaningful under the emulator.
#include <ditty/cuda/runtime.h>
#include <ditty/cuda/testing.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#if !defined(DITTY_CUDA_EMU)
// Built for a GPU there is no emulator to test.
int main() {
  std::puts("# 0 cases: test_emu tests the CPU emulator only");
  return 0;
}
#else
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

namespace t = ditty::cuda::testing;
namespace emu = ditty::cuda::emu;
using ditty::cuda::launch;

namespace {

constexpr unsigned kFull = 0xffffffffu;

// Runs f with emulator errors thrown as emu::Error; returns the message ("" if none).
template <class F>
std::string emu_error(F&& f) {
  emu::set_throw_on_error(true);
  std::string msg;
  try {
    f();
  } catch (const emu::Error& e) {
    msg = e.what();
  }
  emu::set_throw_on_error(false);
  return msg;
}
#define EXPECT_CONTAINS(msg, part) DITTY_EXPECT((msg).find(part) != std::string::npos, "message was: ", (msg).empty() ? "(no error)" : (msg))

// Runs f in a forked child (blocks on its one thread, errors in the default abort mode) and returns
// how it ended and what it wrote to stderr.
struct ChildResult {
  bool clean_exit;  // exited with status 0
  std::string err;
};
template <class F>
ChildResult in_child(F&& f) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 2);
    emu::set_threads(1);
    f();
    std::fflush(nullptr);
    _exit(0);
  }
  close(fds[1]);
  std::string err;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) err.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return {WIFEXITED(status) && WEXITSTATUS(status) == 0, err};
}

struct ScheduleScope {
  std::string before = emu::schedule_name();
  explicit ScheduleScope(const std::string& s) { emu::set_schedule(s); }
  ~ScheduleScope() { emu::set_schedule(before); }
};

// ---- kernels -------------------------------------------------------------------------------------

__global__ void block_sums(const float* x, float* out, int n) {
  DITTY_SHARED(float, part, [32]);
  float v = 0;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) v += x[i];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x < 32) {
    float w = threadIdx.x < blockDim.x / 32 ? part[threadIdx.x] : 0.f;
    for (int o = 16; o > 0; o >>= 1) w += __shfl_down_sync(kFull, w, o);
    if (threadIdx.x == 0) out[blockIdx.x] = w;
  }
}

// 64 threads; each round every thread stores a value, then reads the other warp's. With
// `second_barrier` false the next round's store may overwrite a value the other warp has not read yet.
__global__ void reuse_buffer(const float* x, float* out, int rounds, bool second_barrier) {
  DITTY_SHARED(float, buf, [64]);
  float acc = 0;
  for (int r = 0; r < rounds; ++r) {
    buf[threadIdx.x] = x[r * 64 + threadIdx.x];
    __syncthreads();
    float v = buf[(threadIdx.x + 32) % 64];
    v += __shfl_xor_sync(kFull, v, 1);
    acc = acc * 0.5f + v;
    if (second_barrier) __syncthreads();
  }
  out[threadIdx.x] = acc;
}

__global__ void read_shared_before_write(unsigned* out) {
  DITTY_SHARED(unsigned, s, [4]);
  DITTY_DYNAMIC_SHARED(unsigned, d);
  if (threadIdx.x == 0) {
    out[blockIdx.x * 2] = s[1];
    out[blockIdx.x * 2 + 1] = d[1];
  }
  __syncthreads();
  s[threadIdx.x] = 42u;
  d[threadIdx.x] = 43u;
}

__global__ void indices(unsigned* out) {
  const unsigned tid = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const unsigned bid = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const unsigned nt = blockDim.x * blockDim.y * blockDim.z;
  out[bid * nt + tid] = (bid << 16) | tid;
}

__global__ void collectives(int* out) {
  const int lane = threadIdx.x % 32;
  int* o = out + threadIdx.x * 12;
  o[0] = __shfl_sync(kFull, lane * 10, 3);
  o[1] = __shfl_sync(kFull, lane * 10, lane + 1, 8);  // within segments of 8, wraps
  o[2] = __shfl_up_sync(kFull, lane, 3);
  o[3] = __shfl_up_sync(kFull, lane, 2, 16);
  o[4] = __shfl_down_sync(kFull, lane, 5);
  o[5] = __shfl_down_sync(kFull, lane, 3, 8);
  o[6] = __shfl_xor_sync(kFull, lane, 9);
  o[7] = __shfl_xor_sync(kFull, lane, 4, 4);  // the partner lies outside the segment: own value
  o[8] = static_cast<int>(__ballot_sync(kFull, lane % 3 == 0));
  o[9] = __any_sync(kFull, lane == 7) + 2 * __all_sync(kFull, lane < 32) + 4 * __all_sync(kFull, lane < 31);
  o[10] = __syncthreads_count(lane % 2) + 1000 * __syncthreads_or(threadIdx.x == 40) + 100000 * __syncthreads_and(1);
  // half the warp, mask naming only itself
  o[11] = lane < 16 ? __shfl_xor_sync(0x0000ffffu, lane, 1) : __shfl_down_sync(0xffff0000u, lane, 8, 16);
  __syncwarp();
}

__global__ void partial_warp_ballot(unsigned* out) {
  if (threadIdx.x == 3) return;  // exited lanes named in a mask do not vote
  const unsigned b = __ballot_sync(kFull, 1);
  if (threadIdx.x == 0) out[0] = b;
}

__global__ void mask_omits_self(float* x) {
  if (threadIdx.x == 1) x[0] = __shfl_sync(0x1u, x[1], 0);
}
__global__ void different_collectives(float* x) {
  if (threadIdx.x < 16)
    x[threadIdx.x] = __shfl_xor_sync(kFull, x[threadIdx.x], 1);
  else
    x[threadIdx.x] = static_cast<float>(__ballot_sync(kFull, 1));
}
__global__ void collective_meets_barrier(float* x) {
  if (threadIdx.x < 16)
    x[threadIdx.x] = __shfl_xor_sync(kFull, x[threadIdx.x], 1);
  else
    __syncthreads();
}
__global__ void source_outside_mask(float* x) {
  if (threadIdx.x < 16) x[threadIdx.x] = __shfl_sync(0x0000ffffu, x[threadIdx.x], 20);
}
__global__ void source_exited(float* x) {
  if (threadIdx.x == 5) return;
  x[threadIdx.x] = __shfl_xor_sync(kFull, x[threadIdx.x], 1);
}
__global__ void barrier_after_exit(float* x) {
  if (threadIdx.x == 0) return;
  __syncthreads();
  x[threadIdx.x] = 1;
}
__global__ void huge_frame(float* out) {
  volatile float local[20480];  // 80 KiB: more than the 64 KiB default fiber stack
  for (int i = 0; i < 20480; ++i) local[i] = static_cast<float>(i);
  out[threadIdx.x] = local[threadIdx.x * 7];
}
__global__ void read_past_end(const float* x, float* out, int n) {
  if (threadIdx.x == 0) out[0] = x[n];
}
__global__ void dynamic_shared_past_end(float* out) {
  DITTY_DYNAMIC_SHARED(float, d);
  d[threadIdx.x] = 1.f;
  __syncthreads();
  if (threadIdx.x == 0) out[0] = d[blockDim.x];
}
__global__ void misaligned_float4(const float* x, float* out) {
  const float4 v = *reinterpret_cast<const float4*>(x + 1);
  out[threadIdx.x] = v.x + v.w;
}

// Each lane waits for the next in a different collective (never for each other): a deadlock.
__global__ void collective_cycle(unsigned* x) {
  const unsigned l = threadIdx.x;
  if (l == 0) x[0] = __shfl_sync(0x3u, l, 1);
  if (l == 1) x[1] = __shfl_xor_sync(0x6u, l, 0);
  if (l == 2) x[2] = __ballot_sync(0x5u, 1);
}
__global__ void bad_width(float* x) { x[threadIdx.x] = __shfl_sync(kFull, x[threadIdx.x], 0, 12); }
__global__ void empty_kernel() {}
__global__ void count_blocks(int* counter) {
  if (threadIdx.x == 0) atomicAdd(counter, 1);
}
__global__ void deep_stack(float* out) {
  float local[4096];  // 16 KiB per thread
  for (int i = 0; i < 4096; ++i) local[i] = static_cast<float>(i + threadIdx.x);
  __syncthreads();
  float s = 0;
  for (int i = 0; i < 4096; i += 97) s += local[i];
  out[threadIdx.x] = s;
}
__global__ void to_bf16_kernel(const float* x, __nv_bfloat16* y, float* back, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    y[i] = __float2bfloat16(x[i]);
    back[i] = __bfloat162float(y[i]);
  }
}

// Round to nearest even, written from the definition of bf16 (the top 16 bits of a float).
std::uint16_t bf16_reference(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  if (std::isnan(f)) return static_cast<std::uint16_t>((u >> 16) | 0x40);  // quiet NaN
  const std::uint32_t lsb = (u >> 16) & 1u;
  return static_cast<std::uint16_t>((u + 0x7fffu + lsb) >> 16);
}

}  // namespace

// ---- schedules -----------------------------------------------------------------------------------

DITTY_TEST(shuffle_reduction_is_bitwise_equal_across_schedules) {
  const int n = t::quick() ? 5003 : 100003, blocks = 13;
  const auto host = t::normal(n, 1.f, 1);
  auto x = t::upload(host);
  auto out = t::device_array<float>(blocks);
  const auto sums = t::same_under_all_schedules("block_sums", [&] {
    launch(block_sums, blocks, 256, 0, nullptr, x.get(), out.get(), n);
    DITTY_CUDA_CHECK(cudaGetLastError());
    return t::download(out);
  });
  double total = 0, want = 0;
  for (float s : sums) total += s;
  for (float v : host) want += v;
  DITTY_EXPECT(std::fabs(total - want) < 1e-3 * (1 + std::fabs(want)), total, " vs ", want);
  DITTY_EXPECT(t::schedules().size() == 5u, t::schedules().size());
}

DITTY_TEST(random_schedule_seeds_are_accepted_and_reported) {
  ScheduleScope s("random:12345");
  DITTY_EXPECT(emu::schedule_name() == "random:12345", emu::schedule_name());
  bool threw = false;
  try {
    emu::set_schedule("sideways");
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  DITTY_EXPECT(threw);
}

DITTY_TEST(missing_syncthreads_is_caught_by_the_warp_ahead_schedules) {
  const int rounds = 5;
  std::vector<float> host(rounds * 64);
  for (std::size_t i = 0; i < host.size(); ++i) host[i] = static_cast<float>(i % 97);
  std::vector<float> want(64);
  for (int tid = 0; tid < 64; ++tid) {
    float acc = 0;
    for (int r = 0; r < rounds; ++r) {
      const float mine = host[r * 64 + (tid + 32) % 64], partner = host[r * 64 + ((tid ^ 1) + 32) % 64];
      acc = acc * 0.5f + (mine + partner);
    }
    want[tid] = acc;
  }
  auto x = t::upload(host);
  auto out = t::device_array<float>(64);
  auto run = [&](const std::string& schedule, bool second_barrier) {
    ScheduleScope s(schedule);
    launch(reuse_buffer, 1, 64, 0, nullptr, x.get(), out.get(), rounds, second_barrier);
    DITTY_CUDA_CHECK(cudaGetLastError());
    return t::download(out);
  };
  // With both barriers every schedule computes the right answer.
  for (const auto& s : t::schedules()) DITTY_EXPECT(t::bitwise_equal(run(s, true), want), "schedule ", s);
  // Without the second barrier, forward and reverse still happen to read before the next store...
  DITTY_EXPECT(t::bitwise_equal(run("forward", false), want));
  DITTY_EXPECT(t::bitwise_equal(run("reverse", false), want));
  // ...but a warp running ahead overwrites the buffer before the other warp read it.
  DITTY_EXPECT(!t::bitwise_equal(run("warp-ahead", false), want));
  DITTY_EXPECT(!t::bitwise_equal(run("warp-ahead-reverse", false), want));
  bool caught = false;
  try {
    t::same_under_all_schedules("reuse_buffer", [&] {
      launch(reuse_buffer, 1, 64, 0, nullptr, x.get(), out.get(), rounds, false);
      return t::download(out);
    });
  } catch (const t::Failure& f) {
    caught = std::string(f.what()).find("differs from forward") != std::string::npos;
  }
  DITTY_EXPECT(caught, "same_under_all_schedules let the race through");
}

DITTY_TEST(blocks_run_on_several_threads_with_atomic_counts) {
  auto counter = t::upload(std::vector<int>{0});
  const unsigned before = emu::threads();
  emu::set_threads(4);
  launch(count_blocks, dim3(37, 3), 64, 0, nullptr, counter.get());
  emu::set_threads(before);
  DITTY_CUDA_CHECK(cudaGetLastError());
  DITTY_EXPECT(t::download(counter)[0] == 111, t::download(counter)[0]);
}

DITTY_TEST(thread_and_block_indices_in_three_dimensions) {
  const dim3 grid(3, 2, 2), block(5, 3, 2);
  const unsigned nt = 30, nb = 12;
  auto out = t::device_array<unsigned>(nt * nb);
  for (const auto& s : t::schedules()) {
    ScheduleScope scope(s);
    launch(indices, grid, block, 0, nullptr, out.get());
    DITTY_CUDA_CHECK(cudaGetLastError());
    const auto got = t::download(out);
    for (unsigned b = 0; b < nb; ++b)
      for (unsigned i = 0; i < nt; ++i) DITTY_EXPECT(got[b * nt + i] == ((b << 16) | i), "block ", b, " thread ", i, " ", s);
  }
}

// ---- shared memory -------------------------------------------------------------------------------

DITTY_TEST(shared_memory_is_poisoned_at_every_block_start) {
  const unsigned before = emu::threads();
  emu::set_threads(1);  // both blocks on one OS thread: the second must not see the first's stores
  auto out = t::device_array<unsigned>(4);
  launch(read_shared_before_write, 2, 4, 4 * sizeof(unsigned), nullptr, out.get());
  emu::set_threads(before);
  DITTY_CUDA_CHECK(cudaGetLastError());
  const auto got = t::download(out);
  for (unsigned v : got) DITTY_EXPECT(v == 0xffffffffu, std::hex, v);
  float f;
  std::memcpy(&f, &got[0], 4);
  DITTY_EXPECT(std::isnan(f));
}

DITTY_TEST(dynamic_shared_memory_limits) {
  auto out = t::device_array<unsigned>(4);
  launch(read_shared_before_write, 1, 4, 48 * 1024 + 4, nullptr, out.get());
  DITTY_EXPECT(cudaGetLastError() == cudaErrorInvalidValue, "more than 48 KiB without the attribute");
  DITTY_CUDA_CHECK(cudaFuncSetAttribute(read_shared_before_write, cudaFuncAttributeMaxDynamicSharedMemorySize, 100 * 1024));
  launch(read_shared_before_write, 1, 4, 100 * 1024, nullptr, out.get());
  DITTY_CUDA_CHECK(cudaGetLastError());
  DITTY_EXPECT(cudaFuncSetAttribute(read_shared_before_write, cudaFuncAttributeMaxDynamicSharedMemorySize, 228 * 1024) ==
               cudaErrorInvalidValue);
  DITTY_EXPECT(cudaGetLastError() == cudaErrorInvalidValue);
}

// ---- warp collectives ----------------------------------------------------------------------------

DITTY_TEST(warp_collectives_follow_cuda_semantics) {
  auto out = t::device_array<int>(64 * 12);
  const auto got = t::same_under_all_schedules("collectives", [&] {
    launch(collectives, 1, 64, 0, nullptr, out.get());
    DITTY_CUDA_CHECK(cudaGetLastError());
    return t::download(out);
  });
  unsigned ballot = 0;
  for (int l = 0; l < 32; l += 3) ballot |= 1u << l;
  for (int tid = 0; tid < 64; ++tid) {
    const int lane = tid % 32;
    const int* o = &got[tid * 12];
    const int seg8 = lane & ~7, seg16 = lane & ~15, seg4 = lane & ~3;
    const int want[12] = {
        30,
        (seg8 + ((lane + 1) & 7)) * 10,
        lane >= 3 ? lane - 3 : lane,
        lane - 2 >= seg16 ? lane - 2 : lane,
        lane + 5 < 32 ? lane + 5 : lane,
        lane + 3 < seg8 + 8 ? lane + 3 : lane,
        lane ^ 9,
        ((lane ^ 4) & ~3) == seg4 ? lane ^ 4 : lane,
        static_cast<int>(ballot),
        1 + 2 + 0,
        32 + 1000 + 100000,
        lane < 16 ? lane ^ 1 : (lane + 8 < 32 ? lane + 8 : lane),
    };
    for (int k = 0; k < 12; ++k) DITTY_EXPECT(o[k] == want[k], "thread ", tid, " result ", k, ": ", o[k], " != ", want[k]);
  }
}

DITTY_TEST(exited_and_missing_lanes_do_not_vote) {
  auto out = t::device_array<unsigned>(1);
  launch(partial_warp_ballot, 1, 20, 0, nullptr, out.get());  // a partial warp: lanes 20..31 do not exist
  DITTY_CUDA_CHECK(cudaGetLastError());
  DITTY_EXPECT(t::download(out)[0] == (0xfffffu & ~(1u << 3)), std::hex, t::download(out)[0]);
}

DITTY_TEST(error_a_mask_that_omits_the_calling_lane) {
  auto x = t::device_array<float>(64);
  const std::string msg = emu_error([&] { launch(mask_omits_self, 2, 32, 0, nullptr, x.get()); });
  EXPECT_CONTAINS(msg, "omits the lane itself");
  EXPECT_CONTAINS(msg, "thread (1,0,0)");
  EXPECT_CONTAINS(msg, "test_emu.cpp:");
  EXPECT_CONTAINS(msg, "mask_omits_self");
  EXPECT_CONTAINS(msg, "__shfl_sync");
}

DITTY_TEST(error_lanes_in_different_collectives) {
  auto x = t::device_array<float>(32);
  for (const auto& s : t::schedules()) {
    ScheduleScope scope(s);
    const std::string msg = emu_error([&] { launch(different_collectives, 1, 32, 0, nullptr, x.get()); });
    EXPECT_CONTAINS(msg, "different collectives");
    EXPECT_CONTAINS(msg, "__ballot_sync");
    EXPECT_CONTAINS(msg, "__shfl_xor_sync");
  }
}

DITTY_TEST(error_a_collective_meets_a_barrier) {
  auto x = t::device_array<float>(32);
  for (const auto& s : t::schedules()) {
    ScheduleScope scope(s);
    const std::string msg = emu_error([&] { launch(collective_meets_barrier, 1, 32, 0, nullptr, x.get()); });
    EXPECT_CONTAINS(msg, "different collectives");
    EXPECT_CONTAINS(msg, "__syncthreads");
  }
}

DITTY_TEST(error_a_source_lane_outside_the_mask) {
  auto x = t::device_array<float>(32);
  const std::string msg = emu_error([&] { launch(source_outside_mask, 1, 32, 0, nullptr, x.get()); });
  EXPECT_CONTAINS(msg, "reads lane 20");
  EXPECT_CONTAINS(msg, "outside the mask");
}

DITTY_TEST(error_a_source_lane_that_exited) {
  auto x = t::device_array<float>(32);
  for (const auto& s : t::schedules()) {
    ScheduleScope scope(s);
    const std::string msg = emu_error([&] { launch(source_exited, 1, 32, 0, nullptr, x.get()); });
    EXPECT_CONTAINS(msg, "reads lane 5");
    EXPECT_CONTAINS(msg, "has exited");
  }
}

DITTY_TEST(error_a_barrier_after_threads_exited) {
  auto x = t::device_array<float>(64);
  {
    ScheduleScope scope("forward");  // thread 0 exits before the others reach the barrier
    const std::string msg = emu_error([&] { launch(barrier_after_exit, 1, 64, 0, nullptr, x.get()); });
    EXPECT_CONTAINS(msg, "reached after 1 thread(s) of the block exited");
    EXPECT_CONTAINS(msg, "thread (1,0,0)");
  }
  {
    ScheduleScope scope("reverse");  // the others wait at the barrier when thread 0 exits
    const std::string msg = emu_error([&] { launch(barrier_after_exit, 1, 64, 0, nullptr, x.get()); });
    EXPECT_CONTAINS(msg, "exited while 63 thread(s) of its block wait at a barrier");
  }
}

DITTY_TEST(error_deadlock_between_collectives) {
  auto x = t::device_array<unsigned>(3);
  for (const auto& s : t::schedules()) {
    ScheduleScope scope(s);
    const std::string msg = emu_error([&] { launch(collective_cycle, 1, 3, 0, nullptr, x.get()); });
    EXPECT_CONTAINS(msg, "deadlock");
    EXPECT_CONTAINS(msg, "thread (2,0,0) waits in __ballot_sync");
  }
}

DITTY_TEST(error_a_shuffle_width_that_is_not_a_power_of_two) {
  auto x = t::device_array<float>(32);
  const std::string msg = emu_error([&] { launch(bad_width, 1, 32, 0, nullptr, x.get()); });
  EXPECT_CONTAINS(msg, "width 12");
}

DITTY_TEST(after_an_error_the_emulator_keeps_working) {
  auto x = t::device_array<float>(32);
  DITTY_EXPECT(!emu_error([&] { launch(source_exited, 4, 32, 0, nullptr, x.get()); }).empty());
  ditty_test_shuffle_reduction_is_bitwise_equal_across_schedules();
}

DITTY_TEST(error_device_primitives_outside_a_kernel) {
  const std::string msg = emu_error([] { __syncthreads(); });
  EXPECT_CONTAINS(msg, "__syncthreads used outside a kernel");
  EXPECT_CONTAINS(emu_error([] { (void)threadIdx.x; }), "threadIdx used outside a kernel");
}

DITTY_TEST(by_default_an_error_aborts_with_a_message) {
  auto x = t::device_array<float>(64);
  const ChildResult r = in_child([&] { launch(mask_omits_self, 2, 32, 0, nullptr, x.get()); });
  DITTY_EXPECT(!r.clean_exit);
  EXPECT_CONTAINS(r.err, "ditty cuda emulator: lane 1 (thread (1,0,0)) calls __shfl_sync with mask 0x00000001");
  EXPECT_CONTAINS(r.err, "in block (0,0,0), thread (1,0,0) (warp 0, lane 1)");
}

// ---- fibers --------------------------------------------------------------------------------------

DITTY_TEST(per_thread_arrays_fit_the_fiber_stacks) {
  auto out = t::device_array<float>(256);
  launch(deep_stack, 1, 256, 0, nullptr, out.get());
  DITTY_CUDA_CHECK(cudaGetLastError());
  const auto got = t::download(out);
  for (int tid = 0; tid < 256; ++tid) {
    float s = 0;
    for (int i = 0; i < 4096; i += 97) s += static_cast<float>(i + tid);
    DITTY_EXPECT(got[tid] == s, tid);
  }
}

DITTY_TEST(a_fiber_stack_overflow_is_reported) {
  if (SANITIZED) return;  // ASan reports stack overflows itself
  auto out = t::device_array<float>(32);
  const ChildResult r = in_child([&] {
    emu::set_schedule("forward");
    launch(huge_frame, 1, 32, 0, nullptr, out.get());
  });
  DITTY_EXPECT(!r.clean_exit);
  EXPECT_CONTAINS(r.err, "overflowed its 64 KiB fiber stack");
  EXPECT_CONTAINS(r.err, "thread (0,0,0)");
}

DITTY_TEST(sanitizers_see_into_kernels) {
  if (!SANITIZED) return;
  auto x = t::device_array<float>(33);
  auto out = t::device_array<float>(64);
  ChildResult r = in_child([&] { launch(read_past_end, 1, 32, 0, nullptr, x.get(), out.get(), 33); });
  DITTY_EXPECT(!r.clean_exit);
  EXPECT_CONTAINS(r.err, "heap-buffer-overflow");
  EXPECT_CONTAINS(r.err, "read_past_end");
  r = in_child([&] { launch(dynamic_shared_past_end, 1, 32, 32 * sizeof(float), nullptr, out.get()); });
  DITTY_EXPECT(!r.clean_exit);
  EXPECT_CONTAINS(r.err, "heap-buffer-overflow");
  EXPECT_CONTAINS(r.err, "dynamic_shared_past_end");
  r = in_child([&] { launch(misaligned_float4, 1, 1, 0, nullptr, x.get(), out.get()); });
  DITTY_EXPECT(!r.clean_exit);
  EXPECT_CONTAINS(r.err, "misaligned address");
}

// ---- bf16 ----------------------------------------------------------------------------------------

DITTY_TEST(bf16_round_trip_matches_round_to_nearest_even) {
  std::vector<float> x = t::normal(t::quick() ? 4000 : 40000, 3.f, 5);
  const float specials[] = {0.f, -0.f, 1.f, 1.00390625f /* 1 + 2^-8: a tie, to even */, 1.01171875f /* tie, up */,
                            3.3895314e38f, -3.3895314e38f, INFINITY, -INFINITY, 1e-40f, -1e-45f, 65504.f};
  x.insert(x.end(), std::begin(specials), std::end(specials));
  const int n = static_cast<int>(x.size());
  auto dx = t::upload(x);
  auto dy = t::device_array<__nv_bfloat16>(n);
  auto back = t::device_array<float>(n);
  launch(to_bf16_kernel, (n + 127) / 128, 128, 0, nullptr, dx.get(), dy.get(), back.get(), n);
  DITTY_CUDA_CHECK(cudaGetLastError());
  const auto y = t::download(dy);
  const auto b = t::download(back);
  for (int i = 0; i < n; ++i) {
    std::uint16_t bits;
    std::memcpy(&bits, &y[i], 2);
    DITTY_EXPECT(bits == bf16_reference(x[i]), "x = ", x[i], " gave 0x", std::hex, bits);
    const std::uint32_t wide = static_cast<std::uint32_t>(bits) << 16;
    DITTY_EXPECT(std::memcmp(&wide, &b[i], 4) == 0, "x = ", x[i]);
  }
}

// ---- launches and the runtime --------------------------------------------------------------------

DITTY_TEST(launch_configuration_errors) {
  launch(empty_kernel, 1, 1025, 0, nullptr);
  DITTY_EXPECT(cudaGetLastError() == cudaErrorInvalidConfiguration);
  launch(empty_kernel, 1, dim3(1, 1, 65), 0, nullptr);
  DITTY_EXPECT(cudaGetLastError() == cudaErrorInvalidConfiguration);
  launch(empty_kernel, dim3(1, 65536), 32, 0, nullptr);
  DITTY_EXPECT(cudaGetLastError() == cudaErrorInvalidConfiguration);
  launch(empty_kernel, 0, 32, 0, nullptr);
  DITTY_EXPECT(cudaGetLastError() == cudaErrorInvalidConfiguration);
  launch(empty_kernel, 1, 32, 228 * 1024, nullptr);
  DITTY_EXPECT(cudaPeekAtLastError() == cudaErrorInvalidValue);
  DITTY_EXPECT(cudaGetLastError() == cudaErrorInvalidValue);
  DITTY_EXPECT(cudaGetLastError() == cudaSuccess);
  launch(empty_kernel, 1, dim3(32, 32), 0, nullptr);
  DITTY_EXPECT(cudaGetLastError() == cudaSuccess);
  launch(empty_kernel, 1, 32, 0, reinterpret_cast<cudaStream_t>(0x1234));
  DITTY_EXPECT(cudaGetLastError() == cudaErrorInvalidResourceHandle);
}

DITTY_TEST(runtime_memory_streams_events_and_errors) {
  void* p = nullptr;
  DITTY_CUDA_CHECK(cudaMalloc(&p, 1000));
  DITTY_EXPECT(reinterpret_cast<std::uintptr_t>(p) % 256 == 0);
  std::vector<unsigned char> h(1000, 7), back(1000, 0);
  cudaStream_t s = nullptr;
  DITTY_CUDA_CHECK(cudaStreamCreate(&s));
  DITTY_CUDA_CHECK(cudaMemcpyAsync(p, h.data(), 1000, cudaMemcpyHostToDevice, s));
  DITTY_CUDA_CHECK(cudaMemsetAsync(static_cast<char*>(p) + 10, 3, 5, s));
  DITTY_CUDA_CHECK(cudaMemcpyAsync(back.data(), p, 1000, cudaMemcpyDefault, s));
  DITTY_CUDA_CHECK(cudaStreamSynchronize(s));
  DITTY_EXPECT(back[9] == 7 && back[10] == 3 && back[14] == 3 && back[15] == 7);
  DITTY_EXPECT(cudaMemcpy(back.data(), p, 1001, cudaMemcpyDeviceToHost) == cudaErrorInvalidValue, "read past the end");
  DITTY_EXPECT(cudaMemcpy(h.data(), back.data(), 10, cudaMemcpyHostToDevice) == cudaErrorInvalidValue, "host as device");
  DITTY_EXPECT(cudaMemset(h.data(), 0, 10) == cudaErrorInvalidValue);
  DITTY_EXPECT(cudaFree(static_cast<char*>(p) + 8) == cudaErrorInvalidValue, "free inside an allocation");
  DITTY_EXPECT(cudaGetLastError() == cudaErrorInvalidValue);
  cudaEvent_t a, b;
  DITTY_CUDA_CHECK(cudaEventCreate(&a));
  DITTY_CUDA_CHECK(cudaEventCreate(&b));
  DITTY_CUDA_CHECK(cudaEventRecord(a, s));
  DITTY_CUDA_CHECK(cudaEventRecord(b, s));
  float ms = -1;
  DITTY_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
  DITTY_EXPECT(ms >= 0);
  DITTY_CUDA_CHECK(cudaEventDestroy(a));
  DITTY_CUDA_CHECK(cudaEventDestroy(b));
  DITTY_CUDA_CHECK(cudaStreamDestroy(s));
  DITTY_EXPECT(cudaStreamDestroy(s) == cudaErrorInvalidResourceHandle);
  DITTY_CUDA_CHECK(cudaFree(p));
  DITTY_EXPECT(cudaFree(p) == cudaErrorInvalidValue, "double free");
  DITTY_EXPECT(cudaGetLastError() == cudaErrorInvalidValue);

  int count = 0, version = 0;
  DITTY_CUDA_CHECK(cudaGetDeviceCount(&count));
  DITTY_EXPECT(count == 1);
  DITTY_CUDA_CHECK(cudaSetDevice(0));
  DITTY_EXPECT(cudaSetDevice(1) == cudaErrorInvalidDevice);
  cudaGetLastError();
  cudaDeviceProp prop;
  DITTY_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  DITTY_EXPECT(std::string(prop.name) == "ditty CPU emulator", prop.name);
  DITTY_EXPECT(prop.warpSize == 32 && prop.maxThreadsPerBlock == 1024 && prop.sharedMemPerBlockOptin == 227 * 1024);
  DITTY_CUDA_CHECK(cudaRuntimeGetVersion(&version));
  DITTY_EXPECT(version == CUDART_VERSION);
  std::size_t free_bytes = 0, total = 0;
  DITTY_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
  DITTY_EXPECT(total > 0 && free_bytes <= total);
  DITTY_EXPECT(std::string(cudaGetErrorName(cudaErrorInvalidConfiguration)) == "cudaErrorInvalidConfiguration");
  DITTY_EXPECT(std::string(cudaGetErrorString(cudaErrorMemoryAllocation)) == "out of memory");
  bool threw = false;
  try {
    DITTY_CUDA_CHECK(cudaFree(reinterpret_cast<void*>(0x10)));
  } catch (const std::runtime_error& e) {
    threw = std::string(e.what()).find("cudaErrorInvalidValue") != std::string::npos;
  }
  DITTY_EXPECT(threw, "DITTY_CUDA_CHECK names the error");
  cudaGetLastError();
}

DITTY_TEST_MAIN()

#endif  // DITTY_CUDA_EMU
