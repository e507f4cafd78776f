// The CPU emulation of the CUDA device side, included by ditty/cuda/runtime.h when a .cu file is
// compiled by g++ (see native/cuda/README.md). Each CUDA thread is a fiber; a block's fibers run on one
// OS thread and switch only at __syncthreads and warp collectives; blocks run on a pool of OS threads.
// The runtime API (cudaMalloc, streams, errors...) keeps the real declarations of cuda_runtime_api.h
// and is implemented in runtime_api.cpp.
#pragma once

#include <cuda_runtime.h>
#include <cuda_bf16.h>

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <source_location>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#define DITTY_CUDA_EMU 1

#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif
// A bare __shared__ would silently become a per-thread local under g++: refuse it.
#undef __shared__
#define __shared__ __shared___is_not_emulated_use_DITTY_SHARED_or_DITTY_DYNAMIC_SHARED

inline constexpr int warpSize = 32;

namespace ditty::cuda::emu {

struct ThreadState {
  uint3 thread_idx;
  unsigned linear;
  unsigned warp;
  unsigned lane;
};

struct BlockState {
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
  unsigned char* dynamic_shared;
  std::uint64_t epoch;  // unique per block run: static shared memory is poisoned once per epoch
};

extern thread_local constinit ThreadState* tl_thread;
extern thread_local constinit BlockState* tl_block;

[[noreturn]] void outside_kernel(const char* what, std::source_location loc);

inline const ThreadState& thread_state(const char* what, std::source_location loc) {
  if (!tl_thread) outside_kernel(what, loc);
  return *tl_thread;
}
inline const BlockState& block_state(const char* what, std::source_location loc) {
  if (!tl_block) outside_kernel(what, loc);
  return *tl_block;
}

// ---- schedules and error handling --------------------------------------------------------------
enum class Schedule { forward, reverse, random, warp_ahead, warp_ahead_reverse };
// Names: "forward", "reverse", "random" (or "random:SEED"), "warp-ahead", "warp-ahead-reverse".
// Throws std::invalid_argument for another name. The default comes from DITTY_EMU_SCHEDULE.
void set_schedule(const std::string& name);
std::string schedule_name();
const char* const* schedule_names();  // null-terminated list of the five base names

// By default an emulator error (a warp collective misused, a deadlock...) prints a message naming the
// kernel, block and thread and aborts. Tests of the emulator itself switch to throwing emu::Error
// from the launch instead.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
void set_throw_on_error(bool on);

// OS threads that run blocks (default: hardware threads; DITTY_EMU_THREADS).
void set_threads(unsigned n);
unsigned threads();

// ---- the device-side primitives (implemented in emu.cpp) ----------------------------------------
enum class Op : std::uint8_t { none, syncwarp, shfl, shfl_up, shfl_down, shfl_xor, ballot };

struct BarrierResult {
  int count, all, any;
};
BarrierResult block_barrier(int predicate, const char* what, std::source_location loc);
// Returns the value the collective hands back to this lane (the shuffled bytes, or the ballot).
std::uint64_t warp_collective(Op op, unsigned mask, std::uint64_t value, unsigned value_size, int arg, int width,
                              const char* what, std::source_location loc);
unsigned live_lanes();

template <class T>
std::uint64_t to_bits(const T& v) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "warp shuffles move values of at most 8 bytes");
  std::uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <class T>
T from_bits(std::uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}

inline void shared_enter(void* p, std::size_t n, std::uint64_t& epoch, std::source_location loc) {
  const BlockState& b = block_state("DITTY_SHARED", loc);
  if (epoch != b.epoch) {
    std::memset(p, 0xff, n);
    epoch = b.epoch;
  }
}
inline void* dynamic_shared(std::source_location loc) { return block_state("DITTY_DYNAMIC_SHARED", loc).dynamic_shared; }

// ---- launches -----------------------------------------------------------------------------------
using Thunk = void (*)(void* pack);
// Validates the configuration (the CUDA error goes to cudaGetLastError, as with <<<>>>), then runs
// every block to completion before returning.
void launch_impl(const void* kernel, dim3 grid, dim3 block, std::size_t shared_bytes, cudaStream_t stream, Thunk thunk,
                 void* pack);

template <class... P>
struct LaunchPack {
  void (*kernel)(P...);
  std::tuple<std::decay_t<P>...> params;
};

// The integer types the atomics below exist for (4 and 8 bytes, as on the GPU).
template <class T>
concept AtomicWord = std::is_integral_v<T> && sizeof(T) >= 4;
// Puts v in *p while replace(*p, v) holds; returns the value it found last (atomicMax, atomicMin).
template <AtomicWord T, class Replace>
inline T atomic_replace_while(T* p, T v, Replace replace) {
  T old = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (replace(old, v) && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
}

}  // namespace ditty::cuda::emu

#define threadIdx (::ditty::cuda::emu::thread_state("threadIdx", ::std::source_location::current()).thread_idx)
#define blockIdx (::ditty::cuda::emu::block_state("blockIdx", ::std::source_location::current()).block_idx)
#define blockDim (::ditty::cuda::emu::block_state("blockDim", ::std::source_location::current()).block_dim)
#define gridDim (::ditty::cuda::emu::block_state("gridDim", ::std::source_location::current()).grid_dim)

#define DITTY_EMU_CAT2_(a, b) a##b
#define DITTY_EMU_CAT_(a, b) DITTY_EMU_CAT2_(a, b)
// Static shared memory: one copy per OS thread, i.e. per block in flight, poisoned (0xff bytes: NaN
// for float and bf16) by the first thread of each block that passes the declaration.
#define DITTY_SHARED(type, name, dims)                                                            \
  static thread_local __attribute__((aligned(16))) type name dims;                                \
  static thread_local ::std::uint64_t DITTY_EMU_CAT_(ditty_emu_epoch_, name);                     \
  ::ditty::cuda::emu::shared_enter(static_cast<void*>(&name), sizeof(name),                        \
                                   DITTY_EMU_CAT_(ditty_emu_epoch_, name), ::std::source_location::current())
#define DITTY_DYNAMIC_SHARED(type, name) \
  type* name = reinterpret_cast<type*>(::ditty::cuda::emu::dynamic_shared(::std::source_location::current()))

// ---- barriers and warp collectives --------------------------------------------------------------
inline void __syncthreads(std::source_location loc = std::source_location::current()) {
  ditty::cuda::emu::block_barrier(1, "__syncthreads", loc);
}
inline int __syncthreads_count(int p, std::source_location loc = std::source_location::current()) {
  return ditty::cuda::emu::block_barrier(p != 0, "__syncthreads_count", loc).count;
}
inline int __syncthreads_and(int p, std::source_location loc = std::source_location::current()) {
  return ditty::cuda::emu::block_barrier(p != 0, "__syncthreads_and", loc).all;
}
inline int __syncthreads_or(int p, std::source_location loc = std::source_location::current()) {
  return ditty::cuda::emu::block_barrier(p != 0, "__syncthreads_or", loc).any;
}
inline void __syncwarp(unsigned mask = 0xffffffffu, std::source_location loc = std::source_location::current()) {
  ditty::cuda::emu::warp_collective(ditty::cuda::emu::Op::syncwarp, mask, 0, 0, 0, warpSize, "__syncwarp", loc);
}
template <class T>
inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize,
                     std::source_location loc = std::source_location::current()) {
  using namespace ditty::cuda::emu;
  return from_bits<T>(warp_collective(Op::shfl, mask, to_bits(var), sizeof(T), src_lane, width, "__shfl_sync", loc));
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize,
                        std::source_location loc = std::source_location::current()) {
  using namespace ditty::cuda::emu;
  return from_bits<T>(
      warp_collective(Op::shfl_up, mask, to_bits(var), sizeof(T), static_cast<int>(delta), width, "__shfl_up_sync", loc));
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize,
                          std::source_location loc = std::source_location::current()) {
  using namespace ditty::cuda::emu;
  return from_bits<T>(warp_collective(Op::shfl_down, mask, to_bits(var), sizeof(T), static_cast<int>(delta), width,
                                      "__shfl_down_sync", loc));
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize,
                         std::source_location loc = std::source_location::current()) {
  using namespace ditty::cuda::emu;
  return from_bits<T>(
      warp_collective(Op::shfl_xor, mask, to_bits(var), sizeof(T), lane_mask, width, "__shfl_xor_sync", loc));
}
inline unsigned __ballot_sync(unsigned mask, int predicate, std::source_location loc = std::source_location::current()) {
  using namespace ditty::cuda::emu;
  return static_cast<unsigned>(warp_collective(Op::ballot, mask, predicate != 0, 4, 0, warpSize, "__ballot_sync", loc));
}
inline int __any_sync(unsigned mask, int predicate, std::source_location loc = std::source_location::current()) {
  using namespace ditty::cuda::emu;
  return warp_collective(Op::ballot, mask, predicate != 0, 4, 0, warpSize, "__any_sync", loc) != 0;
}
inline int __all_sync(unsigned mask, int predicate, std::source_location loc = std::source_location::current()) {
  using namespace ditty::cuda::emu;
  // all: every participating lane voted; exited lanes named in the mask do not vote
  const auto votes = warp_collective(Op::ballot, mask, predicate != 0, 4, 0, warpSize, "__all_sync", loc);
  return votes == (mask & live_lanes());
}
// The emulator cannot know which lanes are converged; it answers with the lanes that have not exited.
inline unsigned __activemask() { return ditty::cuda::emu::live_lanes(); }

// Blocks of a grid run concurrently on several OS threads, so these stay real atomics, on the
// integer types the GPU has them for. There is no float atomicAdd on purpose: kernels must be
// deterministic (native/cuda/README.md).
template <ditty::cuda::emu::AtomicWord T>
inline T atomicAdd(T* p, T v) {
  return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
template <ditty::cuda::emu::AtomicWord T>
inline T atomicSub(T* p, T v) {
  return __atomic_fetch_sub(p, v, __ATOMIC_RELAXED);
}
template <ditty::cuda::emu::AtomicWord T>
inline T atomicExch(T* p, T v) {
  return __atomic_exchange_n(p, v, __ATOMIC_RELAXED);
}
template <ditty::cuda::emu::AtomicWord T>
inline T atomicCAS(T* p, T expected, T desired) {
  __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return expected;
}
template <ditty::cuda::emu::AtomicWord T>
inline T atomicMax(T* p, T v) {
  return ditty::cuda::emu::atomic_replace_while(p, v, [](T old, T x) { return old < x; });
}
template <ditty::cuda::emu::AtomicWord T>
inline T atomicMin(T* p, T v) {
  return ditty::cuda::emu::atomic_replace_while(p, v, [](T old, T x) { return old > x; });
}
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_signal_fence(std::memory_order_seq_cst); }

template <class T>
inline T __ldg(const T* p) {
  return *p;
}

// ---- math intrinsics (the GPU's fast versions are approximate; compare GPU runs by tolerance) ----
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __log2f(float x) { return std::log2(x); }
inline float __powf(float x, float y) { return std::pow(x, y); }
inline float __sinf(float x) { return std::sin(x); }
inline float __cosf(float x) { return std::cos(x); }
inline float __tanf(float x) { return std::tan(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return std::sqrt(x); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __frsqrt_rn(float x) { return 1.0f / std::sqrt(x); }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : (x == x ? x : 0.0f)); }
inline int __float_as_int(float x) { return __builtin_bit_cast(int, x); }
inline unsigned __float_as_uint(float x) { return __builtin_bit_cast(unsigned, x); }
inline float __int_as_float(int x) { return __builtin_bit_cast(float, x); }
inline float __uint_as_float(unsigned x) { return __builtin_bit_cast(float, x); }
inline long long __double_as_longlong(double x) { return __builtin_bit_cast(long long, x); }
inline double __longlong_as_double(long long x) { return __builtin_bit_cast(double, x); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x) {
  unsigned r = 0;
  for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
  return r;
}
inline int __mul24(int a, int b) { return a * b; }
inline unsigned __umulhi(unsigned a, unsigned b) { return static_cast<unsigned>((static_cast<unsigned long long>(a) * b) >> 32); }

// CUDA's global min/max overloads for device code
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }

// The C++ overloads cuda_runtime.h gives only under nvcc: a kernel pointer for a const void*.
template <class... P>
inline cudaError_t cudaFuncSetAttribute(void (*kernel)(P...), cudaFuncAttribute attr, int value) {
  return ::cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), attr, value);
}
template <class... P>
inline cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, void (*kernel)(P...)) {
  return ::cudaFuncGetAttributes(attr, reinterpret_cast<const void*>(kernel));
}

namespace ditty::cuda {
// The emulated launch: same call as under nvcc (ditty/cuda/runtime.h).
template <class... P, class... A>
inline void launch(void (*kernel)(P...), dim3 grid, dim3 block, std::size_t shared_bytes, cudaStream_t stream,
                   A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "launch: wrong number of kernel arguments");
  emu::LaunchPack<P...> pack{kernel, std::tuple<std::decay_t<P>...>(std::forward<A>(args)...)};
  emu::launch_impl(reinterpret_cast<const void*>(kernel), grid, block, shared_bytes, stream,
                   [](void* p) {
                     auto& lp = *static_cast<emu::LaunchPack<P...>*>(p);
                     std::apply(lp.kernel, lp.params);  // each thread gets its own copies of the parameters
                   },
                   &pack);
}
}  // namespace ditty::cuda
