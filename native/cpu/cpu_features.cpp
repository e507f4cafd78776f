#include "ditty/cpu_features.h"

#include <cstdlib>
#include <cstring>
#include <fstream>

namespace ditty {

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = [] {
    CpuFeatures c;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    c.avx2 = __builtin_cpu_supports("avx2");
    c.fma = __builtin_cpu_supports("fma");
    c.avx512f = __builtin_cpu_supports("avx512f");
    c.avx512bw = __builtin_cpu_supports("avx512bw");
    c.avx512vl = __builtin_cpu_supports("avx512vl");
    c.avx512bf16 = __builtin_cpu_supports("avx512bf16");
#endif
    return c;
  }();
  return f;
}

const char* simd_level() {
  const CpuFeatures& f = cpu_features();
  const char* cap = std::getenv("DITTY_SIMD");
  bool allow512 = !cap || std::strcmp(cap, "avx512") == 0;
  bool allow2 = allow512 || (cap && std::strcmp(cap, "avx2") == 0);
  if (allow512 && f.avx512f && f.avx512bw && f.avx512vl) return "avx512";
  if (allow2 && f.avx2 && f.fma) return "avx2";
  return "portable";
}

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "unknown";
}

}  // namespace ditty
