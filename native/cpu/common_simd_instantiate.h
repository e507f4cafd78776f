// Compiles the kernel body named by DITTY_SIMD_BODY (a quoted file name) three times, in namespaces
// portable, avx2 and avx512, each with `V` set to its vector type and the matching target, so one
// source serves every path. Include it (no include guard: once per body) inside an unnamed namespace.
#ifndef DITTY_SIMD_BODY
#error "define DITTY_SIMD_BODY before including common_simd_instantiate.h"
#endif

namespace portable {
using V = ::ditty::cpu::simd::Scalar;
#include "common_simd_loops.inc"
#include DITTY_SIMD_BODY
}  // namespace portable

#if DITTY_SIMD_X86
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
using V = ::ditty::cpu::simd::Avx2;
#include "common_simd_loops.inc"
#include DITTY_SIMD_BODY
}  // namespace avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma")
namespace avx512 {
using V = ::ditty::cpu::simd::Avx512;
#include "common_simd_loops.inc"
#include DITTY_SIMD_BODY
}  // namespace avx512
#pragma GCC pop_options
#endif  // DITTY_SIMD_X86

#undef DITTY_SIMD_BODY
