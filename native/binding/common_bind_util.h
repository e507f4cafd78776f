// Helpers the common, rwkv and neox bindings share on top of args.h.
#pragma once
#include <initializer_list>
#include <string>

#include "args.h"

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

}  // namespace ditty::binding
