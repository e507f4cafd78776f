// What the ops files share: the stream, typed views of buffers, and the one-dtype-per-call rule.
#pragma once
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "cuda/bind/ops.h"
#include "cuda/context.h"
#include "cuda/device.h"

namespace ditty::cuda::ops {

namespace k = ::ditty::cuda;
using bf16 = __nv_bfloat16;

inline cudaStream_t st() { return context().stream; }

template <class S>
S* as(Buffer& b) {
  return static_cast<S*>(b.data);
}
template <class S>
S* as(Buffer* b) {
  return b ? static_cast<S*>(b->data) : nullptr;
}
inline float* f(Buffer& b) { return as<float>(b); }
inline float* f(Buffer* b) { return as<float>(b); }

using Named = std::pair<const char*, const Buffer*>;

// Whether the activations of `op` are bf16; they must share one dtype (null ones are skipped).
inline bool activations_bf16(const char* op, std::initializer_list<Named> acts) {
  const Named* first = nullptr;
  for (const Named& a : acts) {
    if (!a.second) continue;
    if (!first) {
      first = &a;
    } else if (a.second->dtype != first->second->dtype) {
      throw std::runtime_error(std::string(op) + ": " + first->first + " holds " + dtype_name(first->second->dtype) + " but " +
                               a.first + " holds " + dtype_name(a.second->dtype) + " (a call's activations share one dtype)");
    }
  }
  return first && first->second->dtype == ::ditty::DType::BF16;
}

// Runs fn(std::type_identity<S>) with S the activations' storage type (float or __nv_bfloat16).
template <class Fn>
void with_storage(const char* op, std::initializer_list<Named> acts, Fn&& fn) {
  if (activations_bf16(op, acts)) fn(std::type_identity<bf16>{});
  else fn(std::type_identity<float>{});
}

}  // namespace ditty::cuda::ops

// The storage type inside a with_storage lambda whose parameter is `t`.
#define DITTY_S typename decltype(t)::type
