// Helpers the common, rwkv and neox bindings share on top of args.h and call.h.
#pragma once
#include <array>
#include <cstddef>
#include <initializer_list>
#include <string>
#include <utility>

#include "args.h"
#include "call.h"

namespace ditty::binding {

// The product of shape arguments as an element count, or a JS exception naming `what` on overflow.
inline int64_t elements(const Napi::CallbackInfo& info, const char* what, std::initializer_list<int64_t> dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (__builtin_mul_overflow(n, d, &n)) fail(info.Env(), std::string(what) + ": shape too large");
  }
  return n;
}

// A finite number in [lo, hi] (hi_open: hi excluded).
inline double ranged_arg(const Napi::CallbackInfo& info, size_t i, const char* name, double lo, double hi,
                         bool hi_open = false) {
  double v = number_arg(info, i, name);
  if (!std::isfinite(v) || v < lo || v > hi || (hi_open && v == hi)) {
    fail(info.Env(), std::string(name) + ": expected a number in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                         (hi_open ? ")" : "]") + ", got " + std::to_string(v));
  }
  return v;
}

// The binding of an elementwise kernel called as name(b_0, ..., b_{K-1}, n): each b_i an activation
// of n elements (names[i] in messages); on_cuda gets the Buffers and n when they are on the CUDA
// device, on_cpu their float pointers and n otherwise.
template <std::size_t K, class OnCuda, class OnCpu>
Napi::Value elementwise(const Napi::CallbackInfo& info, const char* const (&names)[K], OnCuda on_cuda, OnCpu on_cpu) {
  Call c(info);
  const int64_t n = int_arg(info, K, "n");
  std::array<Buffer*, K> b{};
  for (std::size_t i = 0; i < K; i++) b[i] = &c.act(i, names[i], n);
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    if (c.cuda()) on_cuda(*b[I]..., n);
    else on_cpu(fp(*b[I])..., n);
  }(std::make_index_sequence<K>{});
  return info.Env().Undefined();
}

}  // namespace ditty::binding
