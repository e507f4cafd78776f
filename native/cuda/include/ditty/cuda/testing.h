// A small harness for the CUDA kernel tests (native/cuda/test/test_<family>.cpp). The same test runs
// on a GPU (nvcc build: one schedule, "gpu") and in the emulator (every thread schedule).
//
//   #include <ditty/cuda/testing.h>
//   namespace t = ditty::cuda::testing;
//   DITTY_TEST(layernorm_odd_rows) {
//     const int n = t::quick() ? 33 : 1031;
//     auto x = t::upload(t::uniform(n, -1.f, 1.f, /*seed*/ 7));
//     auto y = t::device_array<float>(n);
//     auto out = t::same_under_all_schedules("layernorm", [&] {
//       ditty::cuda::layernorm(...);  // a kernel family call on stream nullptr
//       return t::download(y);
//     });
//     DITTY_EXPECT(t::max_rel_error(out, cpu_reference) < 1e-5, "...");
//   }
//   DITTY_TEST_MAIN()
//
// A program prints "ok <case>" or "FAIL <case>: <why>" per case and "# <n> cases, <m> failed"; it
// exits 1 if any failed. Arguments: substrings selecting cases; --list prints the case names.
// DITTY_EMU_QUICK=1 asks tests for small sizes (the sanitizer build uses it).
#pragma once

#include <ditty/cuda/runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace ditty::cuda::testing {

// ---- schedules ------------------------------------------------------------------------------------
inline std::vector<std::string> schedules() {
#if defined(DITTY_CUDA_EMU)
  std::vector<std::string> out;
  for (const char* const* n = emu::schedule_names(); *n; ++n) out.emplace_back(*n);
  return out;
#else
  return {"gpu"};
#endif
}
inline void set_schedule(const std::string& name) {
#if defined(DITTY_CUDA_EMU)
  emu::set_schedule(name);
#else
  if (name != "gpu") throw std::invalid_argument("schedule '" + name + "' exists only in the CPU emulator");
#endif
}
inline bool quick() {
  const char* q = std::getenv("DITTY_EMU_QUICK");
  return q && *q && std::strcmp(q, "0") != 0;
}

// ---- failures -------------------------------------------------------------------------------------
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] inline void fail(const std::string& why, const char* file, int line) {
  throw Failure(std::string(file) + ":" + std::to_string(line) + ": " + why);
}
// Runs `fn`, which must throw an exception whose message contains `part`; returns the message.
template <class F>
std::string expect_throws(F&& fn, const char* what, const std::string& part, const char* file, int line) {
  try {
    fn();
  } catch (const Failure&) {
    throw;
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    if (msg.find(part) == std::string::npos) fail(std::string(what) + " threw '" + msg + "' without '" + part + "'", file, line);
    return msg;
  }
  fail(std::string(what) + " did not throw", file, line);
}
#define DITTY_EXPECT(cond, ...)                                                                            \
  do {                                                                                                     \
    if (!(cond)) {                                                                                         \
      std::ostringstream ditty_expect_os_;                                                                 \
      ditty_expect_os_ << "expected " #cond;                                                               \
      ::ditty::cuda::testing::detail::append(ditty_expect_os_ __VA_OPT__(, ) __VA_ARGS__);                 \
      ::ditty::cuda::testing::fail(ditty_expect_os_.str(), __FILE__, __LINE__);                            \
    }                                                                                                      \
  } while (0)

#define DITTY_EXPECT_EQ(a, b)                                                                 \
  do {                                                                                        \
    const auto expect_a_ = (a);                                                               \
    const auto expect_b_ = (b);                                                               \
    DITTY_EXPECT(expect_a_ == expect_b_, #a " == " #b ": ", expect_a_, " vs ", expect_b_);   \
  } while (0)
#define DITTY_EXPECT_CONTAINS(text, part) \
  DITTY_EXPECT(std::string(text).find(part) != std::string::npos, "'", std::string(text), "' lacks '", part, "'")
// `expr` must throw an exception whose message contains `part`; evaluates to the message.
#define DITTY_EXPECT_THROWS(expr, part) \
  ::ditty::cuda::testing::expect_throws([&] { (void)(expr); }, #expr, part, __FILE__, __LINE__)

namespace detail {
inline void append(std::ostringstream&) {}
template <class... A>
void append(std::ostringstream& os, const A&... a) {
  os << ": ";
  (os << ... << a);
}
}  // namespace detail

// ---- device memory --------------------------------------------------------------------------------
// Owns n elements of device memory; filled with 0xff bytes (NaN for float and bf16) so that an
// element a kernel forgot to write is visible.
template <class T>
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(std::size_t n) : n_(n) {
    DITTY_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p_), n * sizeof(T)));
    if (n) DITTY_CUDA_CHECK(cudaMemset(p_, 0xff, n * sizeof(T)));
  }
  DeviceArray(DeviceArray&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { reset(); }
  T* get() const { return p_; }
  operator T*() const { return p_; }
  std::size_t size() const { return n_; }

 private:
  void reset() {
    if (p_) cudaFree(p_);
    p_ = nullptr;
  }
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

template <class T>
DeviceArray<T> device_array(std::size_t n) {
  return DeviceArray<T>(n);
}
template <class T>
DeviceArray<T> upload(const std::vector<T>& host) {
  DeviceArray<T> d(host.size());
  if (!host.empty()) DITTY_CUDA_CHECK(cudaMemcpy(d.get(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}
template <class T>
void copy_to_device(DeviceArray<T>& d, const std::vector<T>& host) {
  if (host.size() != d.size()) throw std::invalid_argument("copy_to_device: size mismatch");
  if (!host.empty()) DITTY_CUDA_CHECK(cudaMemcpy(d.get(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
}
template <class T>
std::vector<T> download(const T* d, std::size_t n) {
  std::vector<T> host(n);
  DITTY_CUDA_CHECK(cudaDeviceSynchronize());
  if (n) DITTY_CUDA_CHECK(cudaMemcpy(host.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
  return host;
}
template <class T>
std::vector<T> download(const DeviceArray<T>& d) {
  return download(d.get(), d.size());
}

// A device copy of `host` starting `offset` elements into its allocation (offset 1: not 16-byte
// aligned, so the kernels take their one-value paths).
template <class T>
struct Placed {
  DeviceArray<T> buf;
  std::int64_t offset;
  T* get() const { return buf.get() + offset; }
};
template <class T>
void refill(Placed<T>& p, const std::vector<T>& host) {
  if (!host.empty()) DITTY_CUDA_CHECK(cudaMemcpy(p.get(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
}
template <class T>
Placed<T> place(const std::vector<T>& host, std::int64_t offset) {
  Placed<T> p{device_array<T>(host.size() + offset), offset};
  refill(p, host);
  return p;
}
template <class T>
Placed<T> place_empty(std::size_t n, std::int64_t offset) {
  return Placed<T>{device_array<T>(n + offset), offset};
}

// ---- values ---------------------------------------------------------------------------------------
inline float to_float(float x) { return x; }
inline float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
inline double to_float(double x) { return x; }
inline std::vector<__nv_bfloat16> to_bf16(const std::vector<float>& x) {
  std::vector<__nv_bfloat16> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) out[i] = __float2bfloat16(x[i]);
  return out;
}
template <class T>
std::vector<float> to_float(const std::vector<T>& x) {
  std::vector<float> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) out[i] = static_cast<float>(to_float(x[i]));
  return out;
}
// x in storage type S (float or bf16), x as S holds it, and S's name for case labels
template <class S>
std::vector<S> store(const std::vector<float>& x) {
  if constexpr (std::is_same_v<S, float>) {
    return x;
  } else {
    return to_bf16(x);
  }
}
template <class S>
std::vector<float> rounded(const std::vector<float>& x) {
  return to_float(store<S>(x));
}
template <class S>
const char* type_name() {
  return std::is_same_v<S, float> ? "f32" : "bf16";
}

// splitmix64: the same inputs on every machine and compiler
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float uniform(float lo, float hi) { return lo + (hi - lo) * static_cast<float>((next() >> 40) * 0x1.0p-24); }
  float normal() {  // Box-Muller
    const double u1 = ((next() >> 11) + 1) * 0x1.0p-53, u2 = (next() >> 11) * 0x1.0p-53;
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
  std::uint64_t below(std::uint64_t n) { return next() % n; }

 private:
  std::uint64_t s_;
};
inline std::vector<float> uniform(std::size_t n, float lo, float hi, std::uint64_t seed) {
  Rng r(seed);
  std::vector<float> out(n);
  for (auto& x : out) x = r.uniform(lo, hi);
  return out;
}
inline std::vector<float> normal(std::size_t n, float scale, std::uint64_t seed) {
  Rng r(seed);
  std::vector<float> out(n);
  for (auto& x : out) x = scale * r.normal();
  return out;
}

// ---- comparisons ----------------------------------------------------------------------------------
// Index of the first element whose bytes differ (or the shorter length if the sizes differ), -1 if equal.
template <class T>
long long first_bitwise_difference(const std::vector<T>& a, const std::vector<T>& b) {
  static_assert(std::is_trivially_copyable_v<T>);
  const std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0) return static_cast<long long>(i);
  return a.size() == b.size() ? -1 : static_cast<long long>(n);
}
template <class T>
bool bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return first_bitwise_difference(a, b) < 0;
}

// max over i of |got - want| / max(|want|, floor); NaN or a size mismatch gives +inf.
template <class A, class B>
double max_rel_error(const std::vector<A>& got, const std::vector<B>& want, double floor = 1e-6) {
  if (got.size() != want.size()) return INFINITY;
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double g = to_float(got[i]), w = to_float(want[i]);
    if (std::isnan(g) != std::isnan(w)) return INFINITY;
    if (std::isnan(g)) continue;
    worst = std::max(worst, std::fabs(g - w) / std::max(std::fabs(w), floor));
  }
  return worst;
}
template <class A, class B>
double max_abs_error(const std::vector<A>& got, const std::vector<B>& want) {
  if (got.size() != want.size()) return INFINITY;
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double g = to_float(got[i]), w = to_float(want[i]);
    if (std::isnan(g) != std::isnan(w)) return INFINITY;
    if (!std::isnan(g)) worst = std::max(worst, std::fabs(g - w));
  }
  return worst;
}

// got must hold want (the CPU twin's floats) as got's storage type holds it, bit for bit.
template <class S>
void expect_bits(const std::string& what, const std::vector<S>& got, const std::vector<float>& want) {
  const long long i = first_bitwise_difference(got, store<S>(want));
  DITTY_EXPECT(i < 0, what, ": element ", i, " is ", i >= 0 ? to_float(got[i]) : 0.0f, ", the CPU gives ",
               i >= 0 ? want[i] : 0.0f);
}

inline double max_abs(const std::vector<float>& x) {
  double m = 0;
  for (float v : x) m = std::max(m, static_cast<double>(std::fabs(v)));
  return m;
}
// max_rel_error(got, want) within `tol`, where errors are relative to at least `floor_fraction` of
// `scale` (by default want's largest magnitude), so that outputs near 0 are held to the size of the
// rest. DITTY_TEST_VERBOSE=1 prints the error.
template <class G>
void expect_close(const std::string& what, const std::vector<G>& got, const std::vector<float>& want, double tol,
                  double floor_fraction = 1e-3, double scale = -1) {
  if (scale < 0) scale = max_abs(want);
  const double err = max_rel_error(got, want, std::max(floor_fraction * scale, 1e-30));
  if (std::getenv("DITTY_TEST_VERBOSE")) std::printf("  %s: max relative error %.3g\n", what.c_str(), err);
  DITTY_EXPECT(err <= tol, what, ": relative error ", err, " (tolerance ", tol, ")");
}

namespace detail {
template <class T>
long long diff_of(const std::vector<T>& a, const std::vector<T>& b, std::string& where) {
  const long long i = first_bitwise_difference(a, b);
  if (i >= 0) where = "element " + std::to_string(i) + " of " + std::to_string(a.size());
  return i;
}
template <class... T, std::size_t... I>
long long diff_of_tuple(const std::tuple<T...>& a, const std::tuple<T...>& b, std::string& where,
                        std::index_sequence<I...>) {
  long long found = -1;
  auto one = [&](auto index) {
    constexpr std::size_t k = decltype(index)::value;
    if (found >= 0) return;
    found = diff_of(std::get<k>(a), std::get<k>(b), where);
    if (found >= 0) where = "output " + std::to_string(k) + ", " + where;
  };
  (one(std::integral_constant<std::size_t, I>{}), ...);
  return found;
}
template <class... T>
long long diff_of(const std::tuple<T...>& a, const std::tuple<T...>& b, std::string& where) {
  return diff_of_tuple(a, b, where, std::index_sequence_for<T...>{});
}
}  // namespace detail

// Runs `run` (launches, then returns the outputs: a std::vector or a std::tuple of them) under every
// schedule and requires the outputs to be bitwise equal; returns those of the first schedule. The
// schedule in force before is restored.
template <class F>
auto same_under_all_schedules(const std::string& what, F&& run) {
  const auto names = schedules();
#if defined(DITTY_CUDA_EMU)
  const std::string before = emu::schedule_name();
#endif
  set_schedule(names[0]);
  auto first = run();
  for (std::size_t i = 1; i < names.size(); ++i) {
    set_schedule(names[i]);
    auto again = run();
    std::string where;
    if (detail::diff_of(first, again, where) >= 0) {
#if defined(DITTY_CUDA_EMU)
      emu::set_schedule(before);
#endif
      throw Failure(what + ": schedule " + names[i] + " differs from " + names[0] + " at " + where);
    }
  }
#if defined(DITTY_CUDA_EMU)
  emu::set_schedule(before);
#endif
  return first;
}

// ---- registration and main ------------------------------------------------------------------------
struct Case {
  std::string name;
  void (*fn)();
};
inline std::vector<Case>& registry() {
  static std::vector<Case> cases;
  return cases;
}
struct Register {
  Register(const char* name, void (*fn)()) { registry().push_back({name, fn}); }
};

#define DITTY_TEST(name)                                                                      \
  static void ditty_test_##name();                                                            \
  static const ::ditty::cuda::testing::Register ditty_test_register_##name(#name, &ditty_test_##name); \
  static void ditty_test_##name()

inline int run(int argc, char** argv) {
  bool list = false;
  std::vector<std::string> filters;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--list") == 0)
      list = true;
    else
      filters.emplace_back(argv[i]);
  }
  int total = 0, failed = 0;
  for (const Case& c : registry()) {
    bool wanted = filters.empty();
    for (const auto& f : filters) wanted = wanted || c.name.find(f) != std::string::npos;
    if (!wanted) continue;
    if (list) {
      std::printf("%s\n", c.name.c_str());
      continue;
    }
    ++total;
    const auto t0 = std::chrono::steady_clock::now();
    std::string why;
    try {
      c.fn();
      const cudaError_t e = cudaGetLastError();
      if (e != cudaSuccess) why = std::string("CUDA error left behind: ") + cudaGetErrorName(e);
    } catch (const std::exception& e) {
      why = e.what();
      if (why.empty()) why = "exception";
    } catch (...) {
      why = "unknown exception";
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (why.empty()) {
      std::printf("ok %s (%.0f ms)\n", c.name.c_str(), ms);
    } else {
      ++failed;
      std::printf("FAIL %s: %s\n", c.name.c_str(), why.c_str());
    }
    std::fflush(stdout);
  }
  if (!list) std::printf("# %d cases, %d failed\n", total, failed);
  return failed == 0 && (list || total > 0) ? 0 : 1;
}

}  // namespace ditty::cuda::testing

#define DITTY_TEST_MAIN() \
  int main(int argc, char** argv) { return ::ditty::cuda::testing::run(argc, argv); }
