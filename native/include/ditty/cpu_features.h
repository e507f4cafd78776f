// What the processor can run, checked at run time (kernels pick their widest path from this).
#pragma once
#include <string>

namespace ditty {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512bf16 = false;
};

const CpuFeatures& cpu_features();
// "avx512" when avx512f+bw+vl, "avx2" when avx2+fma, else "portable"; DITTY_SIMD=avx2|portable caps it.
const char* simd_level();
std::string cpu_model_name();

}  // namespace ditty
