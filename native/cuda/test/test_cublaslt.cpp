// ditty::cuda::Blas (native/cuda/cublaslt.h) against ditty::cpu::gemm / dense_linear_*: every
// transpose combination, odd sizes, row strides wider than the rows, alpha/beta, the BIAS
// epilogue, bf16 and f32; the heuristic cache; the loader's one-line reasons; and the documented
// column-major semantics of the library itself. Runs against whatever DITTY_CUBLASLT (or the
// default search) loads: the CPU stand-in in the emulated build, libcublasLt on a GPU. Checks that
// only the stand-in can make (it refuses what ditty does not use) run when it is the one loaded.
#include <dlfcn.h>

#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "../cublaslt.h"
#include "ditty/cuda/testing.h"
#include "ditty/gemm.h"

using ditty::cuda::Allocator;
using ditty::cuda::Blas;
namespace lt = ditty::cuda::lt;
using bf16 = __nv_bfloat16;

namespace {

using ditty::cuda::testing::to_float;
using ditty::cuda::testing::type_name;

struct Rng {
  uint64_t s;
  float next() {  // uniform in [-1, 1)
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<float>(static_cast<int32_t>(s >> 40) - (1 << 23)) / static_cast<float>(1 << 23);
  }
};

template <class T>
T from_float(float v) {
  if constexpr (std::is_same_v<T, float>)
    return v;
  else
    return __float2bfloat16_rn(v);
}

// A device copy of a host vector, freed at scope exit.
template <class T>
struct Dev {
  T* ptr = nullptr;
  size_t n = 0;
  explicit Dev(const std::vector<T>& h) : n(h.size()) {
    if (cudaMalloc(reinterpret_cast<void**>(&ptr), n * sizeof(T) + 256) != cudaSuccess)
      throw std::runtime_error("cudaMalloc failed");
    if (cudaMemcpy(ptr, h.data(), n * sizeof(T), cudaMemcpyHostToDevice) != cudaSuccess)
      throw std::runtime_error("cudaMemcpy failed");
  }
  ~Dev() { cudaFree(ptr); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  std::vector<T> get() const {
    std::vector<T> h(n);
    if (cudaMemcpy(h.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost) != cudaSuccess)
      throw std::runtime_error("cudaMemcpy failed");
    return h;
  }
};

template <class T>
std::vector<T> random_vec(size_t n, Rng& rng) {
  std::vector<T> v(n);
  for (auto& x : v) x = from_float<T>(rng.next());
  return v;
}

// The first few mismatches of a comparison, for the failure message.
struct Misses {
  int count = 0;
  std::string text;
  __attribute__((format(printf, 2, 3))) void add(const char* format, ...) {
    if (count++ >= 3) return;
    char buf[400];
    va_list args;
    va_start(args, format);
    std::vsnprintf(buf, sizeof(buf), format, args);
    va_end(args);
    text += buf;
  }
};

// |got - want| within fp32 accumulation error over `terms` unit-sized products, plus one bf16
// rounding of the result when the output is bf16.
template <class TC>
bool close(float got, float want, double terms) {
  if (!std::isfinite(got)) return false;
  double tol = 4e-6 * (terms + 1);
  if constexpr (!std::is_same_v<TC, float>) tol += std::fabs(want) / 256.0;
  return std::fabs(static_cast<double>(got) - want) <= tol;
}

// C[M,N] = alpha op(A) op(B) + beta C (+ bias) with row strides padded by `pad`; the padding must
// stay untouched. offset_elems shifts A to test the alignment handling.
template <class TA, class TC>
void gemm_case(Blas& blas, Rng& rng, bool tA, bool tB, int64_t M, int64_t N, int64_t K, int64_t pad, float alpha,
               float beta, bool with_bias, int64_t offset_elems = 0) {
  const int64_t lda = (tA ? M : K) + pad, ldb = (tB ? K : N) + pad, ldc = N + pad;
  const int64_t rows_a = tA ? K : M, rows_b = tB ? N : K;
  std::vector<TA> A = random_vec<TA>(static_cast<size_t>(rows_a * lda + offset_elems), rng);
  std::vector<TA> B = random_vec<TA>(static_cast<size_t>(rows_b * ldb), rng);
  std::vector<TC> C = random_vec<TC>(static_cast<size_t>(M * ldc), rng);
  std::vector<TC> bias = random_vec<TC>(static_cast<size_t>(N), rng);
  if (beta == 0.0f)  // beta = 0 must not read C
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) C[i * ldc + j] = from_float<TC>(std::numeric_limits<float>::quiet_NaN());

  std::vector<float> Af = to_float(A), Bf = to_float(B), ref = to_float(C), biasf = to_float(bias);
  ditty::cpu::gemm(tA, tB, M, N, K, alpha, Af.data() + offset_elems, lda, Bf.data(), ldb, beta, ref.data(), ldc);
  if (with_bias)
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) ref[i * ldc + j] += biasf[j];

  Dev<TA> dA(A), dB(B);
  Dev<TC> dC(C), dbias(bias);
  blas.gemm<TA, TC>(tA, tB, M, N, K, alpha, dA.ptr + offset_elems, lda, dB.ptr, ldb, beta, dC.ptr, ldc,
                    with_bias ? dbias.ptr : nullptr);
  DITTY_EXPECT_EQ(cudaStreamSynchronize(blas.stream()), cudaSuccess);
  const std::vector<TC> got = dC.get();
  Misses misses;
  for (int64_t i = 0; i < M; i++) {
    for (int64_t j = 0; j < ldc; j++) {
      const size_t at = static_cast<size_t>(i * ldc + j);
      const bool ok = j < N ? close<TC>(to_float(got[at]), ref[at], std::fabs(alpha) * K + std::fabs(beta) + 1)
                            : std::memcmp(&got[at], &C[at], sizeof(TC)) == 0;
      if (!ok)
        misses.add("gemm %s->%s tA=%d tB=%d M=%ld N=%ld K=%ld pad=%ld alpha=%g beta=%g bias=%d: C[%ld,%ld] = %g, want %g; ",
                     type_name<TA>(), type_name<TC>(), tA, tB, static_cast<long>(M), static_cast<long>(N),
                     static_cast<long>(K), static_cast<long>(pad), alpha, beta, with_bias, static_cast<long>(i),
                     static_cast<long>(j), to_float(got[at]), j < N ? ref[at] : to_float(C[at]));
    }
  }
  DITTY_EXPECT(misses.count == 0, misses.count, " wrong elements: ", misses.text);
}

template <class TA, class TC>
void gemm_sweep(Blas& blas) {
  Rng rng{42};
  const int64_t shapes[][3] = {{1, 1, 1}, {7, 33, 129}, {129, 7, 33}, {33, 129, 1}, {1, 129, 7}, {129, 1, 33}};
  for (int t = 0; t < 4; t++)
    for (const auto& s : shapes)
      for (int64_t pad : {0, 3})
        for (int ab = 0; ab < 2; ab++)
          for (bool with_bias : {false, true}) {
            const float alpha = ab ? 0.75f : 1.0f, beta = ab ? -0.5f : 0.0f;
            gemm_case<TA, TC>(blas, rng, t & 1, t & 2, s[0], s[1], s[2], pad, alpha, beta, with_bias);
          }
}

// A pointer aligned to 16 bytes only is a different problem for the heuristic than a 256-byte
// aligned one (the preference's alignment attributes): separate plans, both correct.
void test_alignment(Blas& blas) {
  Rng rng{7};
  const size_t before = blas.heuristic_queries();
  gemm_case<bf16, bf16>(blas, rng, false, true, 33, 64, 48, 0, 1.0f, 0.0f, true, 0);
  gemm_case<bf16, bf16>(blas, rng, false, true, 33, 64, 48, 0, 1.0f, 0.0f, true, 8);  // +16 bytes
  gemm_case<float, float>(blas, rng, true, false, 17, 32, 40, 0, 1.0f, 1.0f, false, 0);
  gemm_case<float, float>(blas, rng, true, false, 17, 32, 40, 0, 1.0f, 1.0f, false, 4);
  DITTY_EXPECT_EQ(blas.heuristic_queries() - before, size_t{4});
}

template <class TA, class TC>
void linear_case(Blas& blas, Rng& rng, int64_t out, int64_t in, int64_t rows, bool with_bias, bool accumulate) {
  std::vector<TA> W = random_vec<TA>(static_cast<size_t>(out * in), rng);
  std::vector<TA> x = random_vec<TA>(static_cast<size_t>(rows * in), rng);
  std::vector<TA> dy = random_vec<TA>(static_cast<size_t>(rows * out), rng);
  std::vector<TC> bias = random_vec<TC>(static_cast<size_t>(out), rng);
  std::vector<TC> y = random_vec<TC>(static_cast<size_t>(rows * out), rng);
  std::vector<TC> dx = random_vec<TC>(static_cast<size_t>(rows * in), rng);
  if (!accumulate) {
    for (auto& v : y) v = from_float<TC>(std::numeric_limits<float>::quiet_NaN());
    for (auto& v : dx) v = from_float<TC>(std::numeric_limits<float>::quiet_NaN());
  }
  std::vector<float> Wf = to_float(W), xf = to_float(x), dyf = to_float(dy), biasf = to_float(bias), yref = to_float(y),
                     dxref = to_float(dx);
  ditty::cpu::dense_linear_forward(Wf.data(), with_bias ? biasf.data() : nullptr, out, in, xf.data(), rows,
                                   yref.data(), accumulate);
  ditty::cpu::dense_linear_input_grad(Wf.data(), out, in, dyf.data(), rows, dxref.data(), accumulate);

  Dev<TA> dW(W), dx_in(x), ddy(dy);
  Dev<TC> dbias(bias), dy_out(y), ddx(dx);
  blas.linear_forward<TA, TC>(dW.ptr, with_bias ? dbias.ptr : nullptr, out, in, dx_in.ptr, rows, dy_out.ptr,
                              accumulate);
  blas.linear_input_grad<TA, TC>(dW.ptr, out, in, ddy.ptr, rows, ddx.ptr, accumulate);
  DITTY_EXPECT_EQ(cudaStreamSynchronize(blas.stream()), cudaSuccess);
  const std::vector<TC> ygot = dy_out.get(), dxgot = ddx.get();
  Misses misses;
  for (size_t i = 0; i < ygot.size(); i++)
    if (!close<TC>(to_float(ygot[i]), yref[i], static_cast<double>(in) + 2))
      misses.add("linear_forward %s->%s out=%ld in=%ld rows=%ld bias=%d acc=%d: y[%zu] = %g, want %g; ",
                   type_name<TA>(), type_name<TC>(), static_cast<long>(out), static_cast<long>(in),
                   static_cast<long>(rows), with_bias, accumulate, i, to_float(ygot[i]), yref[i]);
  for (size_t i = 0; i < dxgot.size(); i++)
    if (!close<TC>(to_float(dxgot[i]), dxref[i], static_cast<double>(out) + 2))
      misses.add("linear_input_grad %s->%s out=%ld in=%ld rows=%ld acc=%d: dx[%zu] = %g, want %g; ",
                   type_name<TA>(), type_name<TC>(), static_cast<long>(out), static_cast<long>(in),
                   static_cast<long>(rows), accumulate, i, to_float(dxgot[i]), dxref[i]);
  DITTY_EXPECT(misses.count == 0, misses.count, " wrong elements: ", misses.text);
}

template <class TA, class TC>
void linear_sweep(Blas& blas) {
  Rng rng{99};
  const int64_t shapes[][3] = {{33, 129, 7}, {7, 33, 129}, {129, 7, 1}, {1, 1, 33}, {64, 96, 33}};
  for (const auto& s : shapes)
    for (bool with_bias : {false, true})
      for (bool accumulate : {false, true}) linear_case<TA, TC>(blas, rng, s[0], s[1], s[2], with_bias, accumulate);
}

void test_heuristic_cache(Allocator& alloc, cudaStream_t stream) {
  Blas blas(alloc, stream);
  Rng rng{5};
  DITTY_EXPECT_EQ(blas.heuristic_queries(), size_t{0});
  gemm_case<bf16, float>(blas, rng, false, true, 7, 33, 129, 0, 1.0f, 0.0f, false);
  DITTY_EXPECT_EQ(blas.heuristic_queries(), size_t{1});
  gemm_case<bf16, float>(blas, rng, false, true, 7, 33, 129, 0, 1.0f, 0.0f, false);  // new buffers, same problem
  gemm_case<bf16, float>(blas, rng, false, true, 7, 33, 129, 0, 0.5f, 1.0f, false);  // alpha/beta are not part of it
  DITTY_EXPECT_EQ(blas.heuristic_queries(), size_t{1});
  gemm_case<bf16, float>(blas, rng, false, true, 7, 33, 129, 0, 1.0f, 0.0f, true);  // the epilogue is
  gemm_case<bf16, float>(blas, rng, true, true, 7, 33, 129, 0, 1.0f, 0.0f, false);  // a transpose is
  gemm_case<bf16, float>(blas, rng, false, true, 7, 33, 129, 1, 1.0f, 0.0f, false);  // strides are
  gemm_case<bf16, bf16>(blas, rng, false, true, 7, 33, 129, 0, 1.0f, 0.0f, false);   // dtypes are
  gemm_case<bf16, float>(blas, rng, false, true, 8, 33, 129, 0, 1.0f, 0.0f, false);  // sizes are
  DITTY_EXPECT_EQ(blas.heuristic_queries(), size_t{6});
  DITTY_EXPECT_EQ(blas.cached_plans(), size_t{6});
  gemm_case<bf16, float>(blas, rng, false, true, 7, 33, 129, 0, 1.0f, 0.0f, true);
  gemm_case<bf16, float>(blas, rng, false, true, 8, 33, 129, 0, 1.0f, 0.0f, false);
  DITTY_EXPECT_EQ(blas.heuristic_queries(), size_t{6});
}

void test_arguments(Blas& blas) {
  float* p = nullptr;
  DITTY_EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&p), 4096), cudaSuccess);
  DITTY_EXPECT_THROWS((blas.gemm<float, float>(false, false, 4, 4, 0, 1.0f, p, 4, p, 4, 0.0f, p, 4)), "K must be positive");
  DITTY_EXPECT_THROWS((blas.gemm<float, float>(false, false, 4, 4, 4, 1.0f, p, 3, p, 4, 0.0f, p, 4)), "row stride");
  DITTY_EXPECT_THROWS((blas.gemm<float, float>(true, false, 5, 4, 4, 1.0f, p, 4, p, 4, 0.0f, p, 4)), "row stride");
  DITTY_EXPECT_THROWS((blas.gemm<float, float>(false, true, 4, 5, 4, 1.0f, p, 4, p, 3, 0.0f, p, 5)), "row stride");
  DITTY_EXPECT_THROWS((blas.gemm<float, float>(false, false, 4, 5, 4, 1.0f, p, 4, p, 5, 0.0f, p, 4)), "row stride");
  DITTY_EXPECT_THROWS((blas.gemm<float, float>(false, false, 4, 4, 4, 1.0f, nullptr, 4, p, 4, 0.0f, p, 4)), "null");
  const size_t queries = blas.heuristic_queries();
  blas.gemm<float, float>(false, false, 0, 4, 4, 1.0f, nullptr, 4, nullptr, 4, 0.0f, nullptr, 4);  // empty: no-op
  blas.gemm<float, float>(false, false, 4, 0, 4, 1.0f, nullptr, 4, nullptr, 4, 0.0f, nullptr, 4);
  DITTY_EXPECT_EQ(blas.heuristic_queries(), queries);
  cudaFree(p);
}

void test_status_names() {
  DITTY_EXPECT_EQ(lt::status_name(0), std::string("CUBLAS_STATUS_SUCCESS"));
  DITTY_EXPECT_EQ(lt::status_name(7), std::string("CUBLAS_STATUS_INVALID_VALUE"));
  DITTY_EXPECT_EQ(lt::status_name(15), std::string("CUBLAS_STATUS_NOT_SUPPORTED"));
  DITTY_EXPECT_EQ(lt::status_name(13), std::string("CUBLAS_STATUS_EXECUTION_FAILED"));
  DITTY_EXPECT_EQ(lt::status_name(99), std::string("CUBLAS_STATUS_99"));
}

void test_loader(Allocator& alloc, cudaStream_t stream) {
  std::string msg = DITTY_EXPECT_THROWS(lt::load("/nonexistent/libcublasLt.so.13"), "cuBLASLt is not available");
  DITTY_EXPECT_CONTAINS(msg, "/nonexistent/libcublasLt.so.13");
  DITTY_EXPECT_CONTAINS(msg, "DITTY_CUBLASLT=/path");
  DITTY_EXPECT(msg.find('\n') == std::string::npos);
  msg = DITTY_EXPECT_THROWS(Blas(alloc, stream, "/nonexistent/libcublasLt.so.13"), "/nonexistent/libcublasLt.so.13");

  // A library that is not cuBLASLt.
  msg = DITTY_EXPECT_THROWS(lt::load("libm.so.6"), "has no cublasLtCreate");
  DITTY_EXPECT(msg.find('\n') == std::string::npos);

  // Through the environment variable, the way users point at a library.
  const char* old = std::getenv("DITTY_CUBLASLT");
  const std::string saved = old ? old : "";
  setenv("DITTY_CUBLASLT", "/nonexistent/dir/libcublasLt.so", 1);
  msg = DITTY_EXPECT_THROWS(lt::load(), "DITTY_CUBLASLT=/nonexistent/dir/libcublasLt.so");
  DITTY_EXPECT(msg.find('\n') == std::string::npos);
  DITTY_EXPECT_THROWS(Blas(alloc, stream), "DITTY_CUBLASLT=/nonexistent/dir/libcublasLt.so");
  if (old)
    setenv("DITTY_CUBLASLT", saved.c_str(), 1);
  else
    unsetenv("DITTY_CUBLASLT");

  // Loading is cached per name: the same Api comes back.
  const lt::Api& a = lt::load();
  const lt::Api& b = lt::load();
  DITTY_EXPECT(&a == &b);
  DITTY_EXPECT(a.version >= 110000);
}

// ---- The library itself, through its C ABI: column-major semantics as documented. ----

struct Raw {
  const lt::Api& api;
  lt::Handle handle = nullptr;
  explicit Raw(const lt::Api& a) : api(a) { DITTY_EXPECT_EQ(api.create(&handle), lt::STATUS_SUCCESS); }
  ~Raw() { api.destroy(handle); }
};

// A heuristic preference allowing at most `bytes` of workspace.
lt::MatmulPreference workspace_preference(const lt::Api& api, uint64_t bytes) {
  lt::MatmulPreference pref = nullptr;
  DITTY_EXPECT_EQ(api.preference_create(&pref), lt::STATUS_SUCCESS);
  DITTY_EXPECT_EQ(api.preference_set_attribute(pref, lt::PREF_MAX_WORKSPACE_BYTES, &bytes, sizeof(bytes)),
                  lt::STATUS_SUCCESS);
  return pref;
}

// D = alpha op(A) op(B) + beta C (+ bias[m]) in column-major f32, against a direct loop.
void test_column_major_semantics(const lt::Api& api, cudaStream_t stream) {
  Raw raw(api);
  Rng rng{11};
  const uint64_t m = 5, n = 3, k = 4;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      for (bool with_bias : {false, true}) {
        const uint64_t a_rows = ta ? k : m, a_cols = ta ? m : k, b_rows = tb ? n : k, b_cols = tb ? k : n;
        const int64_t lda = static_cast<int64_t>(a_rows) + 2, ldb = static_cast<int64_t>(b_rows) + 1,
                      ldc = static_cast<int64_t>(m) + 3;
        std::vector<float> A = random_vec<float>(a_cols * lda, rng), B = random_vec<float>(b_cols * ldb, rng),
                           C = random_vec<float>(n * ldc, rng), bias = random_vec<float>(m, rng);
        const float alpha = 2.0f, beta = 0.5f;
        std::vector<float> want = C;
        for (uint64_t i = 0; i < m; i++)
          for (uint64_t j = 0; j < n; j++) {
            double s = 0;
            for (uint64_t p = 0; p < k; p++) {
              const float a = ta ? A[p + i * lda] : A[i + p * lda];
              const float b = tb ? B[j + p * ldb] : B[p + j * ldb];
              s += static_cast<double>(a) * b;
            }
            want[i + j * ldc] = static_cast<float>(alpha * s + beta * C[i + j * ldc] + (with_bias ? bias[i] : 0.0f));
          }
        Dev<float> dA(A), dB(B), dC(C), dbias(bias), dD(std::vector<float>(n * ldc, 0.0f));
        lt::MatmulDesc desc = nullptr;
        lt::MatrixLayout la = nullptr, lb = nullptr, lc = nullptr;
        DITTY_EXPECT_EQ(api.matmul_desc_create(&desc, lt::COMPUTE_32F, lt::R_32F), lt::STATUS_SUCCESS);
        const int32_t opa = ta ? lt::OP_T : lt::OP_N, opb = tb ? lt::OP_T : lt::OP_N;
        DITTY_EXPECT_EQ(api.matmul_desc_set_attribute(desc, lt::MATMUL_DESC_TRANSA, &opa, sizeof(opa)), lt::STATUS_SUCCESS);
        DITTY_EXPECT_EQ(api.matmul_desc_set_attribute(desc, lt::MATMUL_DESC_TRANSB, &opb, sizeof(opb)), lt::STATUS_SUCCESS);
        if (with_bias) {
          const uint32_t epi = lt::EPILOGUE_BIAS;
          const void* bp = dbias.ptr;
          DITTY_EXPECT_EQ(api.matmul_desc_set_attribute(desc, lt::MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)), lt::STATUS_SUCCESS);
          DITTY_EXPECT_EQ(api.matmul_desc_set_attribute(desc, lt::MATMUL_DESC_BIAS_POINTER, &bp, sizeof(bp)), lt::STATUS_SUCCESS);
        }
        DITTY_EXPECT_EQ(api.matrix_layout_create(&la, lt::R_32F, a_rows, a_cols, lda), lt::STATUS_SUCCESS);
        DITTY_EXPECT_EQ(api.matrix_layout_create(&lb, lt::R_32F, b_rows, b_cols, ldb), lt::STATUS_SUCCESS);
        DITTY_EXPECT_EQ(api.matrix_layout_create(&lc, lt::R_32F, m, n, ldc), lt::STATUS_SUCCESS);
        const uint64_t ws_bytes = 1 << 20;
        lt::MatmulPreference pref = workspace_preference(api, ws_bytes);
        lt::HeuristicResult res{};
        int returned = 0;
        DITTY_EXPECT_EQ(api.algo_get_heuristic(raw.handle, desc, la, lb, lc, lc, pref, 1, &res, &returned), lt::STATUS_SUCCESS);
        DITTY_EXPECT_EQ(returned, 1);
        DITTY_EXPECT(res.workspaceSize <= ws_bytes);
        Dev<unsigned char> ws{std::vector<unsigned char>(ws_bytes)};
        // C and D distinct here (D's own layout equals C's).
        DITTY_EXPECT_EQ(api.matmul(raw.handle, desc, &alpha, dA.ptr, la, dB.ptr, lb, &beta, dC.ptr, lc, dD.ptr, lc, &res.algo,
                            ws.ptr, ws_bytes, stream),
                 lt::STATUS_SUCCESS);
        DITTY_EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
        const std::vector<float> got = dD.get();
        for (uint64_t i = 0; i < m; i++)
          for (uint64_t j = 0; j < n; j++) DITTY_EXPECT(std::fabs(got[i + j * ldc] - want[i + j * ldc]) < 1e-5f);
        api.preference_destroy(pref);
        api.matrix_layout_destroy(la);
        api.matrix_layout_destroy(lb);
        api.matrix_layout_destroy(lc);
        api.matmul_desc_destroy(desc);
      }
}

// Attribute buffers of the wrong size are INVALID_VALUE (documented for every SetAttribute).
void test_attribute_sizes(const lt::Api& api) {
  lt::MatmulDesc desc = nullptr;
  lt::MatrixLayout layout = nullptr;
  lt::MatmulPreference pref = nullptr;
  DITTY_EXPECT_EQ(api.matmul_desc_create(&desc, lt::COMPUTE_32F, lt::R_32F), lt::STATUS_SUCCESS);
  DITTY_EXPECT_EQ(api.matrix_layout_create(&layout, lt::R_16BF, 8, 8, 8), lt::STATUS_SUCCESS);
  DITTY_EXPECT_EQ(api.preference_create(&pref), lt::STATUS_SUCCESS);
  const int64_t wide = 1;
  const int32_t narrow = 1;
  const uint32_t epi = lt::EPILOGUE_BIAS;
  DITTY_EXPECT_EQ(api.matmul_desc_set_attribute(desc, lt::MATMUL_DESC_TRANSA, &wide, sizeof(wide)), lt::STATUS_INVALID_VALUE);
  DITTY_EXPECT_EQ(api.matmul_desc_set_attribute(desc, lt::MATMUL_DESC_EPILOGUE, &wide, sizeof(wide)), lt::STATUS_INVALID_VALUE);
  DITTY_EXPECT_EQ(api.matmul_desc_set_attribute(desc, lt::MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)), lt::STATUS_SUCCESS);
  DITTY_EXPECT_EQ(api.matmul_desc_set_attribute(desc, lt::MATMUL_DESC_BIAS_POINTER, &narrow, sizeof(narrow)),
           lt::STATUS_INVALID_VALUE);
  DITTY_EXPECT_EQ(api.matrix_layout_set_attribute(layout, lt::LAYOUT_ROWS, &narrow, sizeof(narrow)), lt::STATUS_INVALID_VALUE);
  const int64_t ld = 8;
  DITTY_EXPECT_EQ(api.matrix_layout_set_attribute(layout, lt::LAYOUT_LD, &ld, sizeof(ld)), lt::STATUS_SUCCESS);
  DITTY_EXPECT_EQ(api.preference_set_attribute(pref, lt::PREF_MAX_WORKSPACE_BYTES, &narrow, sizeof(narrow)),
           lt::STATUS_INVALID_VALUE);
  DITTY_EXPECT_EQ(api.preference_set_attribute(pref, lt::PREF_MIN_ALIGNMENT_A_BYTES, &wide, sizeof(wide)),
           lt::STATUS_INVALID_VALUE);
  api.preference_destroy(pref);
  api.matrix_layout_destroy(layout);
  api.matmul_desc_destroy(desc);
}

// What only the stand-in refuses (the real library runs these): it models exactly what ditty uses.
void test_standin_strictness(const lt::Api& api) {
  Raw raw(api);
  auto make = [&](int32_t ab, int32_t cd, uint64_t m, uint64_t n, uint64_t k, lt::MatmulDesc& desc,
                  lt::MatrixLayout& la, lt::MatrixLayout& lb, lt::MatrixLayout& lc) {
    DITTY_EXPECT_EQ(api.matmul_desc_create(&desc, lt::COMPUTE_32F, lt::R_32F), lt::STATUS_SUCCESS);
    DITTY_EXPECT_EQ(api.matrix_layout_create(&la, ab, m, k, static_cast<int64_t>(m)), lt::STATUS_SUCCESS);
    DITTY_EXPECT_EQ(api.matrix_layout_create(&lb, ab, k, n, static_cast<int64_t>(k)), lt::STATUS_SUCCESS);
    DITTY_EXPECT_EQ(api.matrix_layout_create(&lc, cd, m, n, static_cast<int64_t>(m)), lt::STATUS_SUCCESS);
  };
  auto drop = [&](lt::MatmulDesc desc, lt::MatrixLayout la, lt::MatrixLayout lb, lt::MatrixLayout lc) {
    api.matrix_layout_destroy(la);
    api.matrix_layout_destroy(lb);
    api.matrix_layout_destroy(lc);
    api.matmul_desc_destroy(desc);
  };
  const uint64_t ws_bytes = 1 << 20;
  lt::MatmulPreference pref = workspace_preference(api, ws_bytes);
  lt::HeuristicResult res{};
  int returned = 0;
  lt::MatmulDesc desc;
  lt::MatrixLayout la, lb, lc;

  lt::MatmulDesc tmp = nullptr;
  DITTY_EXPECT_EQ(api.matmul_desc_create(&tmp, 77, lt::R_32F), lt::STATUS_NOT_SUPPORTED);
  DITTY_EXPECT_EQ(api.matmul_desc_create(&tmp, lt::COMPUTE_32F, lt::R_16BF), lt::STATUS_NOT_SUPPORTED);

  make(lt::R_32F, lt::R_32F, 8, 4, 16, desc, la, lb, lc);
  const int32_t one = 1;
  DITTY_EXPECT_EQ(api.matmul_desc_set_attribute(desc, 999, &one, sizeof(one)), lt::STATUS_INVALID_VALUE);
  DITTY_EXPECT_EQ(api.matrix_layout_set_attribute(la, 999, &one, sizeof(one)), lt::STATUS_INVALID_VALUE);
  DITTY_EXPECT_EQ(api.preference_set_attribute(pref, 999, &one, sizeof(one)), lt::STATUS_INVALID_VALUE);
  DITTY_EXPECT_EQ(api.matmul_desc_set_attribute(desc, lt::MATMUL_DESC_TRANSA, &one, sizeof(one) - 1), lt::STATUS_INVALID_VALUE);
  DITTY_EXPECT_EQ(api.matmul_desc_set_attribute(desc, lt::MATMUL_DESC_TRANSA, nullptr, sizeof(one)), lt::STATUS_INVALID_VALUE);
  // Row order, batches, other epilogues, device pointer mode: not modelled.
  const int32_t row = lt::ORDER_ROW;
  DITTY_EXPECT_EQ(api.matrix_layout_set_attribute(lb, lt::LAYOUT_ORDER, &row, sizeof(row)), lt::STATUS_SUCCESS);
  DITTY_EXPECT_EQ(api.algo_get_heuristic(raw.handle, desc, la, lb, lc, lc, pref, 1, &res, &returned), lt::STATUS_NOT_SUPPORTED);
  DITTY_EXPECT_EQ(returned, 0);
  const int32_t col = lt::ORDER_COL, two = 2;
  DITTY_EXPECT_EQ(api.matrix_layout_set_attribute(lb, lt::LAYOUT_ORDER, &col, sizeof(col)), lt::STATUS_SUCCESS);
  DITTY_EXPECT_EQ(api.matrix_layout_set_attribute(lb, lt::LAYOUT_BATCH_COUNT, &two, sizeof(two)), lt::STATUS_SUCCESS);
  DITTY_EXPECT_EQ(api.algo_get_heuristic(raw.handle, desc, la, lb, lc, lc, pref, 1, &res, &returned), lt::STATUS_NOT_SUPPORTED);
  DITTY_EXPECT_EQ(api.matrix_layout_set_attribute(lb, lt::LAYOUT_BATCH_COUNT, &one, sizeof(one)), lt::STATUS_SUCCESS);
  const uint32_t gelu = lt::EPILOGUE_GELU;
  DITTY_EXPECT_EQ(api.matmul_desc_set_attribute(desc, lt::MATMUL_DESC_EPILOGUE, &gelu, sizeof(gelu)), lt::STATUS_SUCCESS);
  DITTY_EXPECT_EQ(api.algo_get_heuristic(raw.handle, desc, la, lb, lc, lc, pref, 1, &res, &returned), lt::STATUS_NOT_SUPPORTED);
  const uint32_t plain = lt::EPILOGUE_DEFAULT;
  DITTY_EXPECT_EQ(api.matmul_desc_set_attribute(desc, lt::MATMUL_DESC_EPILOGUE, &plain, sizeof(plain)), lt::STATUS_SUCCESS);
  DITTY_EXPECT_EQ(api.matmul_desc_set_attribute(desc, lt::MATMUL_DESC_POINTER_MODE, &one, sizeof(one)), lt::STATUS_NOT_SUPPORTED);
  const int32_t host = 0;
  DITTY_EXPECT_EQ(api.matmul_desc_set_attribute(desc, lt::MATMUL_DESC_POINTER_MODE, &host, sizeof(host)), lt::STATUS_SUCCESS);
  // Inconsistent sizes: op(A) is 8 x 16 but C is 8 x 4 and B 16 x 4 ... with TRANSB, op(B) is 4 x 16.
  const int32_t t = lt::OP_T;
  DITTY_EXPECT_EQ(api.matmul_desc_set_attribute(desc, lt::MATMUL_DESC_TRANSB, &t, sizeof(t)), lt::STATUS_SUCCESS);
  DITTY_EXPECT_EQ(api.algo_get_heuristic(raw.handle, desc, la, lb, lc, lc, pref, 1, &res, &returned), lt::STATUS_INVALID_VALUE);
  const int32_t n_op = lt::OP_N;
  DITTY_EXPECT_EQ(api.matmul_desc_set_attribute(desc, lt::MATMUL_DESC_TRANSB, &n_op, sizeof(n_op)), lt::STATUS_SUCCESS);

  // A valid problem: an algorithm, bound to it.
  DITTY_EXPECT_EQ(api.algo_get_heuristic(raw.handle, desc, la, lb, lc, lc, pref, 1, &res, &returned), lt::STATUS_SUCCESS);
  DITTY_EXPECT_EQ(returned, 1);
  DITTY_EXPECT(res.workspaceSize > 0);  // so that the workspace handling is exercised
  std::vector<float> zeros(1024, 0.0f);
  Dev<float> dA(zeros), dB(zeros), dC(zeros);
  Dev<unsigned char> ws{std::vector<unsigned char>(ws_bytes)};
  const float alpha = 1.0f, beta = 0.0f;
  DITTY_EXPECT_EQ(api.matmul(raw.handle, desc, &alpha, dA.ptr, la, dB.ptr, lb, &beta, dC.ptr, lc, dC.ptr, lc, &res.algo, ws.ptr,
                      ws_bytes, nullptr),
           lt::STATUS_SUCCESS);
  // too little workspace, or none
  DITTY_EXPECT_EQ(api.matmul(raw.handle, desc, &alpha, dA.ptr, la, dB.ptr, lb, &beta, dC.ptr, lc, dC.ptr, lc, &res.algo,
                      nullptr, 0, nullptr),
           lt::STATUS_INVALID_VALUE);
  // less aligned than the preference declared (256 by default)
  DITTY_EXPECT_EQ(api.matmul(raw.handle, desc, &alpha, dA.ptr + 4, la, dB.ptr, lb, &beta, dC.ptr, lc, dC.ptr, lc, &res.algo,
                      ws.ptr, ws_bytes, nullptr),
           lt::STATUS_NOT_SUPPORTED);
  // the algorithm of another problem
  lt::MatmulDesc desc2;
  lt::MatrixLayout la2, lb2, lc2;
  make(lt::R_32F, lt::R_32F, 8, 5, 16, desc2, la2, lb2, lc2);
  DITTY_EXPECT_EQ(api.matmul(raw.handle, desc2, &alpha, dA.ptr, la2, dB.ptr, lb2, &beta, dC.ptr, lc2, dC.ptr, lc2, &res.algo,
                      ws.ptr, ws_bytes, nullptr),
           lt::STATUS_NOT_SUPPORTED);
  // in place with different layouts
  lt::MatrixLayout lwide = nullptr;
  DITTY_EXPECT_EQ(api.matrix_layout_create(&lwide, lt::R_32F, 8, 4, 9), lt::STATUS_SUCCESS);
  DITTY_EXPECT_EQ(api.matmul(raw.handle, desc, &alpha, dA.ptr, la, dB.ptr, lb, &beta, dC.ptr, lc, dC.ptr, lwide, nullptr,
                      ws.ptr, ws_bytes, nullptr),
           lt::STATUS_NOT_SUPPORTED);
  api.matrix_layout_destroy(lwide);
  drop(desc2, la2, lb2, lc2);
  // mixed input types; f32 inputs with a bf16 output
  lt::MatrixLayout lbf = nullptr;
  DITTY_EXPECT_EQ(api.matrix_layout_create(&lbf, lt::R_16BF, 16, 4, 16), lt::STATUS_SUCCESS);
  DITTY_EXPECT_EQ(api.algo_get_heuristic(raw.handle, desc, la, lbf, lc, lc, pref, 1, &res, &returned), lt::STATUS_NOT_SUPPORTED);
  api.matrix_layout_destroy(lbf);
  drop(desc, la, lb, lc);
  make(lt::R_32F, lt::R_16BF, 8, 4, 16, desc, la, lb, lc);
  DITTY_EXPECT_EQ(api.algo_get_heuristic(raw.handle, desc, la, lb, lc, lc, pref, 1, &res, &returned), lt::STATUS_NOT_SUPPORTED);
  // destroyed objects are refused, not used
  drop(desc, la, lb, lc);
  DITTY_EXPECT_EQ(api.algo_get_heuristic(raw.handle, desc, la, lb, lc, lc, pref, 1, &res, &returned), lt::STATUS_INVALID_VALUE);
  DITTY_EXPECT_EQ(api.matmul_desc_set_attribute(desc, lt::MATMUL_DESC_TRANSA, &one, sizeof(one)), lt::STATUS_INVALID_VALUE);
  DITTY_EXPECT_EQ(api.matrix_layout_destroy(la), lt::STATUS_INVALID_VALUE);
  api.preference_destroy(pref);
}

bool is_standin(const lt::Api& api) {
  void* lib = dlopen(api.path.c_str(), RTLD_NOW | RTLD_NOLOAD);
  const bool yes = lib && dlsym(lib, "dittyCublasLtStandin");
  if (lib) dlclose(lib);
  return yes;
}


// One stream, allocator and Blas for the cases (kept to the end of the process).
struct Env {
  cudaStream_t stream = nullptr;
  Allocator alloc;
  const lt::Api& api = lt::load();
  bool standin = is_standin(api);
  Blas blas{alloc, make_stream(stream)};
  static cudaStream_t make_stream(cudaStream_t& s) {
    DITTY_CUDA_CHECK(cudaStreamCreate(&s));
    return s;
  }
};
Env& env() {
  static Env* e = [] {
    auto* made = new Env;
    std::printf("# cuBLASLt: %s (version %zu)%s\n", made->api.path.c_str(), made->api.version,
                made->standin ? ", the CPU stand-in" : "");
    return made;
  }();
  return *e;
}

}  // namespace

DITTY_TEST(gemm_bf16_to_bf16) { gemm_sweep<bf16, bf16>(env().blas); }
DITTY_TEST(gemm_bf16_to_f32) { gemm_sweep<bf16, float>(env().blas); }
DITTY_TEST(gemm_f32_to_f32) { gemm_sweep<float, float>(env().blas); }
DITTY_TEST(gemm_pointer_alignment_is_part_of_the_plan) { test_alignment(env().blas); }
DITTY_TEST(linear_bf16_to_bf16) { linear_sweep<bf16, bf16>(env().blas); }
DITTY_TEST(linear_bf16_to_f32) { linear_sweep<bf16, float>(env().blas); }
DITTY_TEST(linear_f32_to_f32) { linear_sweep<float, float>(env().blas); }
DITTY_TEST(gemm_argument_checks) { test_arguments(env().blas); }
DITTY_TEST(heuristic_queried_once_per_problem) {
  test_heuristic_cache(env().alloc, env().stream);
  DITTY_EXPECT_EQ(env().alloc.live_bytes(), Blas::kWorkspaceBytes);  // only the shared Blas's workspace
}
DITTY_TEST(status_names) { test_status_names(); }
DITTY_TEST(loader_one_line_reasons) { test_loader(env().alloc, env().stream); }
DITTY_TEST(library_column_major_semantics) { test_column_major_semantics(env().api, env().stream); }
DITTY_TEST(library_attribute_sizes) { test_attribute_sizes(env().api); }
DITTY_TEST(standin_refuses_what_ditty_does_not_use) {
  if (!env().standin) {
    std::printf("# not the stand-in: skipped\n");
    return;
  }
  test_standin_strictness(env().api);
}

// A status the library returns reaches the caller by name, with the problem; a failed plan is not
// cached. (The stand-in refuses sizes past 2^62; what the real library says to them is its business.)
DITTY_TEST(standin_status_reported_by_name) {
  if (!env().standin) {
    std::printf("# not the stand-in: skipped\n");
    return;
  }
  Blas& blas = env().blas;
  float* p = nullptr;
  DITTY_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p), 256));
  const int64_t huge = (int64_t{1} << 62) + 1;
  const size_t before = blas.heuristic_queries(), plans = blas.cached_plans();
  for (int attempt = 0; attempt < 2; attempt++) {
    const std::string msg = DITTY_EXPECT_THROWS((blas.gemm<float, float>(false, false, huge, 1, 1, 1.0f, p, 1, p, 1, 0.0f, p, 1)),
                                          "cublasLtMatmulAlgoGetHeuristic failed with CUBLAS_STATUS_INVALID_VALUE (7)");
    DITTY_EXPECT_CONTAINS(msg, "gemm f32 -> f32 M=4611686018427387905 N=1 K=1");
    DITTY_EXPECT(msg.find('\n') == std::string::npos);
  }
  DITTY_EXPECT_EQ(blas.heuristic_queries() - before, size_t{2});
  DITTY_EXPECT_EQ(blas.cached_plans(), plans);
  cudaFree(p);
}

DITTY_TEST_MAIN()
