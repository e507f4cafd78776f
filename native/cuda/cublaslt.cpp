#include "cublaslt.h"

#include <dlfcn.h>

#include <cstdlib>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace ditty::cuda {
namespace lt {

std::string status_name(Status status) {
  switch (status) {
    case STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "CUBLAS_STATUS_" + std::to_string(status);
  }
}

namespace {

std::string one_line(std::string s) {
  for (char& ch : s)
    if (ch == '\n' || ch == '\r') ch = ' ';
  return s;
}

template <class Fn>
bool resolve(void* lib, const char* name, Fn& fn, std::string& missing) {
  dlerror();
  void* sym = dlsym(lib, name);
  if (!sym) {
    if (missing.empty()) missing = name;
    return false;
  }
  fn = reinterpret_cast<Fn>(sym);
  return true;
}

// Opens `name` and resolves every entry point; on failure `why` says why (one line).
std::unique_ptr<Api> open(const std::string& name, std::string& why) {
  dlerror();
  void* lib = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* err = dlerror();
    why = one_line(err ? err : name + ": dlopen failed");
    return nullptr;
  }
  auto api = std::make_unique<Api>();
  api->path = name;
  std::string missing;
  resolve(lib, "cublasLtCreate", api->create, missing);
  resolve(lib, "cublasLtDestroy", api->destroy, missing);
  resolve(lib, "cublasLtGetVersion", api->get_version, missing);
  resolve(lib, "cublasLtMatmulDescCreate", api->matmul_desc_create, missing);
  resolve(lib, "cublasLtMatmulDescSetAttribute", api->matmul_desc_set_attribute, missing);
  resolve(lib, "cublasLtMatmulDescDestroy", api->matmul_desc_destroy, missing);
  resolve(lib, "cublasLtMatrixLayoutCreate", api->matrix_layout_create, missing);
  resolve(lib, "cublasLtMatrixLayoutSetAttribute", api->matrix_layout_set_attribute, missing);
  resolve(lib, "cublasLtMatrixLayoutDestroy", api->matrix_layout_destroy, missing);
  resolve(lib, "cublasLtMatmulPreferenceCreate", api->preference_create, missing);
  resolve(lib, "cublasLtMatmulPreferenceSetAttribute", api->preference_set_attribute, missing);
  resolve(lib, "cublasLtMatmulPreferenceDestroy", api->preference_destroy, missing);
  resolve(lib, "cublasLtMatmulAlgoGetHeuristic", api->algo_get_heuristic, missing);
  resolve(lib, "cublasLtMatmul", api->matmul, missing);
  if (!missing.empty()) {
    why = name + ": loaded but has no " + missing + " (not cuBLASLt)";
    dlclose(lib);
    return nullptr;
  }
  api->version = api->get_version();
  if (api->version < 110000) {
    why = name + ": cuBLASLt version " + std::to_string(api->version) + " is older than 11.0";
    dlclose(lib);
    return nullptr;
  }
  return api;  // the library stays open for the life of the process
}

}  // namespace

const Api& load(const char* path) {
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<Api>> loaded;

  std::vector<std::string> candidates;
  std::string label;  // how an explicit path was given
  if (path && *path) {
    candidates.emplace_back(path);
  } else if (const char* env = std::getenv("DITTY_CUBLASLT"); env && *env) {
    candidates.emplace_back(env);
    label = "DITTY_CUBLASLT=";
  } else {
    candidates = {"libcublasLt.so.13", "libcublasLt.so.12"};
  }

  std::lock_guard<std::mutex> lock(mutex);
  std::string reasons;
  for (const std::string& name : candidates) {
    if (auto it = loaded.find(name); it != loaded.end()) return *it->second;
    std::string why;
    if (auto api = open(name, why)) return *loaded.emplace(name, std::move(api)).first->second;
    if (!reasons.empty()) reasons += "; ";
    reasons += label + why;
  }
  throw std::runtime_error("cuBLASLt is not available (" + reasons +
                           "): it ships with the CUDA toolkit and the nvidia-cublas wheel; "
                           "set DITTY_CUBLASLT=/path/to/libcublasLt.so.13 to point at it");
}

}  // namespace lt

namespace {

const char* dtype_name(DType t) { return t == DType::bf16 ? "bf16" : "f32"; }

// The alignment cuBLASLt may assume of a pointer: its largest power-of-two divisor, at most 256
// (the preference default). Null (no bias) counts as 256.
uint32_t alignment_of(const void* ptr) {
  const auto v = reinterpret_cast<uintptr_t>(ptr);
  if (v == 0) return 256;
  const uintptr_t low = v & (~v + 1);
  return low >= 256 ? 256u : static_cast<uint32_t>(low);
}

}  // namespace

Blas::Blas(const lt::Api& api, cudaStream_t stream) : api_(api), stream_(stream) {
  const lt::Status status = api_.create(&handle_);
  if (status != lt::STATUS_SUCCESS)
    throw std::runtime_error("cublasLtCreate failed: " + lt::status_name(status) + " (" + api_.path + ")");
}

void Blas::destroy_handle_and_plans() noexcept {
  for (auto& [key, plan] : plans_) destroy_plan(plan);
  plans_.clear();
  if (handle_) api_.destroy(handle_);
  handle_ = nullptr;
}

void Blas::destroy_plan(Plan& plan) noexcept {
  if (plan.a) api_.matrix_layout_destroy(plan.a);
  if (plan.b) api_.matrix_layout_destroy(plan.b);
  if (plan.c) api_.matrix_layout_destroy(plan.c);
  if (plan.desc) api_.matmul_desc_destroy(plan.desc);
  plan = Plan{};
}

void Blas::check(lt::Status status, const char* call, const Problem& p) const {
  if (status == lt::STATUS_SUCCESS) return;
  throw std::runtime_error(std::string(call) + " failed with " + lt::status_name(status) + " (" +
                           std::to_string(status) + ") for gemm " + dtype_name(p.ab) + " -> " + dtype_name(p.c) +
                           " M=" + std::to_string(p.M) + " N=" + std::to_string(p.N) + " K=" + std::to_string(p.K) +
                           " transA=" + std::to_string(p.transA) + " transB=" + std::to_string(p.transB) +
                           " lda=" + std::to_string(p.lda) + " ldb=" + std::to_string(p.ldb) +
                           " ldc=" + std::to_string(p.ldc) + " (cuBLASLt " + api_.path + ", version " +
                           std::to_string(api_.version) + ")");
}

void Blas::run(const Problem& p, float alpha, const void* A, const void* B, float beta, void* C, const void* bias) {
  if (p.M <= 0 || p.N <= 0) return;
  if (p.K <= 0) throw std::invalid_argument("ditty::cuda::Blas::gemm: K must be positive");
  if (p.lda < (p.transA ? p.M : p.K) || p.ldb < (p.transB ? p.K : p.N) || p.ldc < p.N)
    throw std::invalid_argument("ditty::cuda::Blas::gemm: a row stride is smaller than its row (lda " +
                                std::to_string(p.lda) + ", ldb " + std::to_string(p.ldb) + ", ldc " +
                                std::to_string(p.ldc) + " for M=" + std::to_string(p.M) + " N=" +
                                std::to_string(p.N) + " K=" + std::to_string(p.K) + ")");
  if (!A || !B || !C) throw std::invalid_argument("ditty::cuda::Blas::gemm: null matrix pointer");

  const Key key{static_cast<int32_t>(p.ab), static_cast<int32_t>(p.c), p.transA, p.transB, bias != nullptr,
                p.M, p.N, p.K, p.lda, p.ldb, p.ldc, alignment_of(A), alignment_of(B), alignment_of(C),
                alignment_of(bias)};
  Plan& plan = plan_for(p, key, bias);
  if (bias)
    check(api_.matmul_desc_set_attribute(plan.desc, lt::MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)),
          "cublasLtMatmulDescSetAttribute(BIAS_POINTER)", p);
  // Column-major view of the row-major product: C^T[N,M] = op(B)^T op(A)^T, so cuBLASLt's A is our
  // B and its B is our A.
  check(api_.matmul(handle_, plan.desc, &alpha, B, plan.a, A, plan.b, &beta, C, plan.c, C, plan.c, &plan.algo,
                    workspace_, kWorkspaceBytes, stream_),
        "cublasLtMatmul", p);
}

Blas::Plan& Blas::plan_for(const Problem& p, const Key& key, const void* bias) {
  if (auto it = plans_.find(key); it != plans_.end()) return it->second;

  Plan plan;
  lt::MatmulPreference pref = nullptr;
  try {
    check(api_.matmul_desc_create(&plan.desc, lt::COMPUTE_32F, lt::R_32F), "cublasLtMatmulDescCreate", p);
    const int32_t op_a = p.transB ? lt::OP_T : lt::OP_N;
    const int32_t op_b = p.transA ? lt::OP_T : lt::OP_N;
    const uint32_t epilogue = bias ? lt::EPILOGUE_BIAS : lt::EPILOGUE_DEFAULT;
    check(api_.matmul_desc_set_attribute(plan.desc, lt::MATMUL_DESC_TRANSA, &op_a, sizeof(op_a)),
          "cublasLtMatmulDescSetAttribute(TRANSA)", p);
    check(api_.matmul_desc_set_attribute(plan.desc, lt::MATMUL_DESC_TRANSB, &op_b, sizeof(op_b)),
          "cublasLtMatmulDescSetAttribute(TRANSB)", p);
    check(api_.matmul_desc_set_attribute(plan.desc, lt::MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)),
          "cublasLtMatmulDescSetAttribute(EPILOGUE)", p);
    // The heuristic reads the bias pointer's alignment.
    if (bias)
      check(api_.matmul_desc_set_attribute(plan.desc, lt::MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)),
            "cublasLtMatmulDescSetAttribute(BIAS_POINTER)", p);

    // Our B stored row-major [K,N] (or [N,K] when transB) is column-major [N,K] (or [K,N]).
    const auto u = [](int64_t v) { return static_cast<uint64_t>(v); };
    const int32_t ab = static_cast<int32_t>(p.ab);
    check(api_.matrix_layout_create(&plan.a, ab, u(p.transB ? p.K : p.N), u(p.transB ? p.N : p.K), p.ldb),
          "cublasLtMatrixLayoutCreate(A)", p);
    check(api_.matrix_layout_create(&plan.b, ab, u(p.transA ? p.M : p.K), u(p.transA ? p.K : p.M), p.lda),
          "cublasLtMatrixLayoutCreate(B)", p);
    check(api_.matrix_layout_create(&plan.c, static_cast<int32_t>(p.c), u(p.N), u(p.M), p.ldc),
          "cublasLtMatrixLayoutCreate(C)", p);

    check(api_.preference_create(&pref), "cublasLtMatmulPreferenceCreate", p);
    const uint64_t workspace = kWorkspaceBytes;
    check(api_.preference_set_attribute(pref, lt::PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof(workspace)),
          "cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)", p);
    const uint32_t aligns[4] = {key.align_b, key.align_a, key.align_c, key.align_c};
    const int32_t align_attrs[4] = {lt::PREF_MIN_ALIGNMENT_A_BYTES, lt::PREF_MIN_ALIGNMENT_B_BYTES,
                                    lt::PREF_MIN_ALIGNMENT_C_BYTES, lt::PREF_MIN_ALIGNMENT_D_BYTES};
    for (int i = 0; i < 4; i++)
      check(api_.preference_set_attribute(pref, align_attrs[i], &aligns[i], sizeof(aligns[i])),
            "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT)", p);

    lt::HeuristicResult result{};
    int returned = 0;
    heuristic_queries_++;
    check(api_.algo_get_heuristic(handle_, plan.desc, plan.a, plan.b, plan.c, plan.c, pref, 1, &result, &returned),
          "cublasLtMatmulAlgoGetHeuristic", p);
    if (returned < 1) check(lt::STATUS_NOT_SUPPORTED, "cublasLtMatmulAlgoGetHeuristic (no algorithm)", p);
    check(result.state, "cublasLtMatmulAlgoGetHeuristic (result state)", p);
    if (result.workspaceSize > kWorkspaceBytes)
      check(lt::STATUS_INVALID_VALUE, "cublasLtMatmulAlgoGetHeuristic (workspace over the limit)", p);
    plan.algo = result.algo;
    plan.workspace_bytes = result.workspaceSize;
    const lt::Status destroyed = api_.preference_destroy(pref);
    pref = nullptr;
    check(destroyed, "cublasLtMatmulPreferenceDestroy", p);
  } catch (...) {
    if (pref) api_.preference_destroy(pref);
    destroy_plan(plan);
    throw;
  }
  return plans_.emplace(key, plan).first->second;
}

}  // namespace ditty::cuda
