#include "gemm_blas.h"

#include <dlfcn.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "ditty/cpu_features.h"
#include "ditty/parallel.h"

namespace ditty::cpu::gemm_blas {
namespace {

// CBLAS enums and signatures, declared here so that no BLAS header is needed at build time.
constexpr int CBLAS_ROW_MAJOR = 101;
constexpr int CBLAS_NO_TRANS = 111;
constexpr int CBLAS_TRANS = 112;
using SgemmFn = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
using SetThreadsFn = void (*)(int);

struct Blas {
  SgemmFn sgemm = nullptr;
  SetThreadsFn set_threads = nullptr;
  std::string label;
  int threads = 0;  // what it was last told
  std::mutex mutex;
};

// Loaded on first use, i.e. the first time BLAS is preferred (see preferred()): a DITTY_BLAS path
// names the library, else libopenblas.so.0, then libblas.so.3. Nothing is loaded while the own
// kernel is preferred, so OpenBLAS's thread pool never starts needlessly.
Blas& blas() {
  static Blas* b = [] {
    auto* out = new Blas();  // never freed: the library stays loaded for the process
    const char* env = std::getenv("DITTY_BLAS");
    const bool named = env && *env && std::strcmp(env, "none") != 0;
    const char* defaults[] = {"libopenblas.so.0", "libblas.so.3"};
    for (const char* path : defaults) {
      if (named) path = env;
      if (void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) {
        auto sgemm = reinterpret_cast<SgemmFn>(dlsym(h, "cblas_sgemm"));
        if (sgemm) {
          out->sgemm = sgemm;
          out->set_threads = reinterpret_cast<SetThreadsFn>(dlsym(h, "openblas_set_num_threads"));
          out->label = std::string(out->set_threads ? "openblas " : "blas ") + path;
          break;
        }
        dlclose(h);
      }
      if (named) break;
    }
    return out;
  }();
  return *b;
}

// Read on every call. DITTY_BLAS=none: never; DITTY_BLAS=<library>: always; unset: only below
// AVX-512. Measured on an AMD EPYC (Zen 5, 2 cores): Debian's OpenBLAS 0.3.21 runs its Haswell
// (AVX2) kernels at ~85-98 GFLOP/s on one core where the own AVX-512 kernel reaches ~150-165, and
// the own AVX2 kernel is on par with OpenBLAS, which is kept there as the tuned choice.
bool preferred() {
  const char* env = std::getenv("DITTY_BLAS");
  if (env && *env) return std::strcmp(env, "none") != 0;
  return std::strcmp(simd_level(), "avx512") != 0;
}

bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

}  // namespace

const char* name() {
  if (!preferred()) return nullptr;
  Blas& b = blas();
  if (!b.sgemm) return nullptr;
  return b.label.c_str();
}

bool run(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
         const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (!preferred()) return false;
  Blas& b = blas();
  if (!b.sgemm) return false;
  if (!fits_int(M) || !fits_int(N) || !fits_int(K) || !fits_int(lda) || !fits_int(ldb) || !fits_int(ldc)) return false;
  // lda/ldb/ldc must be >= 1 and at least the row length for CBLAS's argument checks
  if (lda < 1 || ldb < 1 || ldc < 1) return false;
  std::lock_guard<std::mutex> lock(b.mutex);
  const int threads = thread_count();
  if (b.set_threads && b.threads != threads) {
    b.set_threads(threads);
    b.threads = threads;
  }
  b.sgemm(CBLAS_ROW_MAJOR, transA ? CBLAS_TRANS : CBLAS_NO_TRANS, transB ? CBLAS_TRANS : CBLAS_NO_TRANS,
          static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), alpha, A, static_cast<int>(lda), B,
          static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
  return true;
}

}  // namespace ditty::cpu::gemm_blas
