// cuBLASLt through our own declarations, loaded with dlopen at run time (no cuBLAS headers or
// libraries are needed to build), and ditty::cuda::Blas: row-major GEMMs and the nn.Linear
// products on top of it, mirroring ditty::cpu::gemm / dense_linear_* (native/include/ditty/gemm.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>

#include "allocator.h"
#include "ditty/cuda/runtime.h"

namespace ditty::cuda {

// The C ABI of the entry points we call. Enums are 32-bit ints; values as documented and unchanged
// from CUDA 11.4 to 13.0.
namespace lt {

using Status = int32_t;
inline constexpr Status STATUS_SUCCESS = 0;
inline constexpr Status STATUS_NOT_INITIALIZED = 1;
inline constexpr Status STATUS_ALLOC_FAILED = 3;
inline constexpr Status STATUS_INVALID_VALUE = 7;
inline constexpr Status STATUS_ARCH_MISMATCH = 8;
inline constexpr Status STATUS_MAPPING_ERROR = 11;
inline constexpr Status STATUS_EXECUTION_FAILED = 13;
inline constexpr Status STATUS_INTERNAL_ERROR = 14;
inline constexpr Status STATUS_NOT_SUPPORTED = 15;
inline constexpr Status STATUS_LICENSE_ERROR = 16;

// cudaDataType_t
inline constexpr int32_t R_32F = 0;
inline constexpr int32_t R_16F = 2;
inline constexpr int32_t R_16BF = 14;
// cublasComputeType_t
inline constexpr int32_t COMPUTE_32F = 68;
// cublasOperation_t
inline constexpr int32_t OP_N = 0;
inline constexpr int32_t OP_T = 1;

// cublasLtMatmulDescAttributes_t
inline constexpr int32_t MATMUL_DESC_COMPUTE_TYPE = 0;
inline constexpr int32_t MATMUL_DESC_SCALE_TYPE = 1;
inline constexpr int32_t MATMUL_DESC_POINTER_MODE = 2;
inline constexpr int32_t MATMUL_DESC_TRANSA = 3;
inline constexpr int32_t MATMUL_DESC_TRANSB = 4;
inline constexpr int32_t MATMUL_DESC_EPILOGUE = 7;  // uint32
inline constexpr int32_t MATMUL_DESC_BIAS_POINTER = 8;  // the address of the pointer is passed
inline constexpr int32_t MATMUL_DESC_EPILOGUE_AUX_POINTER = 11;
inline constexpr int32_t MATMUL_DESC_EPILOGUE_AUX_LD = 12;  // int64
inline constexpr int32_t MATMUL_DESC_BIAS_DATA_TYPE = 26;
// cublasLtMatrixLayoutAttribute_t
inline constexpr int32_t LAYOUT_TYPE = 0;
inline constexpr int32_t LAYOUT_ORDER = 1;
inline constexpr int32_t LAYOUT_ROWS = 2;  // uint64
inline constexpr int32_t LAYOUT_COLS = 3;  // uint64
inline constexpr int32_t LAYOUT_LD = 4;  // int64
inline constexpr int32_t LAYOUT_BATCH_COUNT = 5;  // int32
inline constexpr int32_t LAYOUT_STRIDED_BATCH_OFFSET = 6;  // int64
inline constexpr int32_t ORDER_COL = 0;
inline constexpr int32_t ORDER_ROW = 1;
// cublasLtMatmulPreferenceAttributes_t
inline constexpr int32_t PREF_MAX_WORKSPACE_BYTES = 1;  // uint64
inline constexpr int32_t PREF_MIN_ALIGNMENT_A_BYTES = 5;  // uint32 each, default 256
inline constexpr int32_t PREF_MIN_ALIGNMENT_B_BYTES = 6;
inline constexpr int32_t PREF_MIN_ALIGNMENT_C_BYTES = 7;
inline constexpr int32_t PREF_MIN_ALIGNMENT_D_BYTES = 8;
// cublasLtEpilogue_t
inline constexpr uint32_t EPILOGUE_DEFAULT = 1;
inline constexpr uint32_t EPILOGUE_RELU = 2;
inline constexpr uint32_t EPILOGUE_BIAS = 4;
inline constexpr uint32_t EPILOGUE_GELU = 32;
inline constexpr uint32_t EPILOGUE_GELU_BIAS = 36;

// The opaque handle and descriptors are pointers; their pointees' sizes changed between
// versions, so they only ever come from the Create functions.
using Handle = void*;
using MatmulDesc = void*;
using MatrixLayout = void*;
using MatmulPreference = void*;

struct MatmulAlgo {
  uint64_t data[8];
};
struct HeuristicResult {
  MatmulAlgo algo;
  size_t workspaceSize;
  Status state;
  float wavesCount;
  int reserved[4];
};
static_assert(sizeof(MatmulAlgo) == 64);
static_assert(sizeof(HeuristicResult) == 96);

// The entry points of one loaded library.
struct Api {
  std::string path;  // the name it was opened by
  size_t version = 0;  // cublasLtGetVersion(), e.g. 130000 + minor * 100 + patch for 13.x
  Status (*create)(Handle* handle) = nullptr;
  Status (*destroy)(Handle handle) = nullptr;
  size_t (*get_version)() = nullptr;
  Status (*matmul_desc_create)(MatmulDesc* desc, int32_t compute_type, int32_t scale_type) = nullptr;
  Status (*matmul_desc_set_attribute)(MatmulDesc desc, int32_t attr, const void* buf, size_t size) = nullptr;
  Status (*matmul_desc_destroy)(MatmulDesc desc) = nullptr;
  Status (*matrix_layout_create)(MatrixLayout* layout, int32_t type, uint64_t rows, uint64_t cols, int64_t ld) =
      nullptr;
  Status (*matrix_layout_set_attribute)(MatrixLayout layout, int32_t attr, const void* buf, size_t size) = nullptr;
  Status (*matrix_layout_destroy)(MatrixLayout layout) = nullptr;
  Status (*preference_create)(MatmulPreference* pref) = nullptr;
  Status (*preference_set_attribute)(MatmulPreference pref, int32_t attr, const void* buf, size_t size) = nullptr;
  Status (*preference_destroy)(MatmulPreference pref) = nullptr;
  Status (*algo_get_heuristic)(Handle handle, MatmulDesc op, MatrixLayout a, MatrixLayout b, MatrixLayout c,
                               MatrixLayout d, MatmulPreference pref, int requested, HeuristicResult* results,
                               int* returned) = nullptr;
  Status (*matmul)(Handle handle, MatmulDesc op, const void* alpha, const void* A, MatrixLayout a, const void* B,
                   MatrixLayout b, const void* beta, const void* C, MatrixLayout c, void* D, MatrixLayout d,
                   const MatmulAlgo* algo, void* workspace, size_t workspace_bytes, cudaStream_t stream) = nullptr;
};

// "CUBLAS_STATUS_NOT_SUPPORTED" etc.; "CUBLAS_STATUS_<n>" for values it does not know.
std::string status_name(Status status);

// The library for `path`, or when it is null for $DITTY_CUBLASLT, or when that is unset or empty for
// libcublasLt.so.13 then libcublasLt.so.12. An explicit path (argument or variable) is the only one
// tried. Loaded once per name and kept for the life of the process. Throws std::runtime_error with
// one line saying what was tried and why each failed (including a library without one of our
// entry points).
const Api& load(const char* path = nullptr);

}  // namespace lt

enum class DType : int32_t { f32 = lt::R_32F, bf16 = lt::R_16BF };

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::f32;
}
template <>
constexpr DType dtype_of<__nv_bfloat16>() {
  return DType::bf16;
}

// One cuBLASLt handle, one stream, a 32 MiB workspace from the allocator. Row-major products:
//   C[M,N] = alpha * op(A) op(B) + beta * C (+ bias[N] broadcast over rows, when bias is given)
// with row strides lda, ldb, ldc exactly as ditty::cpu::gemm: op(A) is [M,K] (A stored [K,M] when
// transA), op(B) is [K,N] (B stored [N,K] when transB). Supported (A and B, C and bias):
// bf16 -> bf16, bf16 -> f32, f32 -> f32; fp32 compute (COMPUTE_32F, scale R_32F). beta = 0 does
// not read C. M or N = 0 is a no-op; K must be positive. Pointers are device pointers; work is
// queued on the stream. Each distinct problem (dtypes, transposes, sizes, strides, epilogue,
// pointer alignments) queries the heuristic once; the descriptors and algorithm are cached.
// Not thread-safe: one Blas per stream and host thread.
class Blas {
 public:
  static constexpr size_t kWorkspaceBytes = size_t{32} << 20;

  // `library` as for lt::load. The allocator must outlive the Blas.
  Blas(Allocator& allocator, cudaStream_t stream, const char* library = nullptr)
      : Blas(lt::load(library), stream) {
    workspace_ = allocator.allocate(kWorkspaceBytes);
    allocator_ = &allocator;
  }
  ~Blas() {
    destroy_handle_and_plans();
    if (allocator_) allocator_->release(workspace_);
  }
  Blas(const Blas&) = delete;
  Blas& operator=(const Blas&) = delete;

  template <class TA, class TC>
  void gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const TA* A, int64_t lda,
            const TA* B, int64_t ldb, float beta, TC* C, int64_t ldc, const TC* bias = nullptr) {
    check_pair<TA, TC>();
    run({dtype_of<TA>(), dtype_of<TC>(), transA, transB, M, N, K, lda, ldb, ldc}, alpha, A, B, beta, C, bias);
  }

  // y[rows,out] (+)= x[rows,in] W^T + bias[out] (bias may be null; through the BIAS epilogue),
  // W [out,in] as Hugging Face stores it. As ditty::cpu::dense_linear_forward.
  template <class TA, class TC>
  void linear_forward(const TA* W, const TC* bias, int64_t out, int64_t in, const TA* x, int64_t rows, TC* y,
                      bool accumulate) {
    gemm<TA, TC>(false, true, rows, out, in, 1.0f, x, in, W, in, accumulate ? 1.0f : 0.0f, y, out, bias);
  }
  // dx[rows,in] (+)= dy[rows,out] W. As ditty::cpu::dense_linear_input_grad.
  template <class TA, class TC>
  void linear_input_grad(const TA* W, int64_t out, int64_t in, const TA* dy, int64_t rows, TC* dx, bool accumulate) {
    gemm<TA, TC>(false, false, rows, in, out, 1.0f, dy, out, W, in, accumulate ? 1.0f : 0.0f, dx, in);
  }

  cudaStream_t stream() const { return stream_; }
  const lt::Api& library() const { return api_; }
  // How many times the heuristic was queried, and how many problems are cached.
  size_t heuristic_queries() const { return heuristic_queries_; }
  size_t cached_plans() const { return plans_.size(); }

 private:
  struct Problem {
    DType ab;
    DType c;
    bool transA;
    bool transB;
    int64_t M, N, K, lda, ldb, ldc;
  };
  struct Key {
    int32_t ab, c;
    bool transA, transB, bias;
    int64_t M, N, K, lda, ldb, ldc;
    uint32_t align_a, align_b, align_c, align_bias;
    auto tie() const {
      return std::tie(ab, c, transA, transB, bias, M, N, K, lda, ldb, ldc, align_a, align_b, align_c, align_bias);
    }
    bool operator<(const Key& o) const { return tie() < o.tie(); }
  };
  struct Plan {
    lt::MatmulDesc desc = nullptr;
    lt::MatrixLayout a = nullptr, b = nullptr, c = nullptr;
    lt::MatmulAlgo algo{};
    size_t workspace_bytes = 0;
  };

  template <class TA, class TC>
  static constexpr void check_pair() {
    static_assert(dtype_of<TA>() == DType::bf16 || dtype_of<TC>() == DType::f32,
                  "supported: bf16 -> bf16, bf16 -> f32, f32 -> f32");
  }
  // The workspace is taken and given back in the inline constructor and destructor above, so that
  // cublaslt.o needs no allocator symbols (the emulated build links it into every test program).
  Blas(const lt::Api& api, cudaStream_t stream);
  void destroy_handle_and_plans() noexcept;
  void run(const Problem& p, float alpha, const void* A, const void* B, float beta, void* C, const void* bias);
  Plan& plan_for(const Problem& p, const Key& key, const void* bias);
  void destroy_plan(Plan& plan) noexcept;
  void check(lt::Status status, const char* call, const Problem& p) const;

  const lt::Api& api_;
  Allocator* allocator_ = nullptr;
  cudaStream_t stream_;
  lt::Handle handle_ = nullptr;
  void* workspace_ = nullptr;
  std::map<Key, Plan> plans_;
  size_t heuristic_queries_ = 0;
};

}  // namespace ditty::cuda
