// The CUDA side of the products bindings: GEMMs and dense linears through cuBLASLt; NF4 linears
// dequantize a chunk of rows into scratch (in the activations' dtype) and multiply it (chunks bound
// the scratch); LoRA as the GEMMs of ditty/cuda/lora.h around its dropout kernels; head +
// cross-entropy as chunked GEMMs around the cross-entropy kernel, one host read of the loss.
#include <algorithm>
#include <string>

#include "cuda/bind/ops_util.h"
#include "cuda/cublaslt.h"
#include "ditty/cuda/common.h"
#include "ditty/cuda/lora.h"
#include "ditty/cuda/nf4.h"

namespace ditty::cuda::ops {
namespace {

// The most bytes of dequantized weight rows an NF4 product holds at once.
constexpr size_t kNf4ScratchBytes = size_t{128} << 20;

bool is_bf16(const Buffer& b) { return b.dtype == ::ditty::DType::BF16; }

void same_dtype(const char* op, const char* a_name, const Buffer& a, const char* b_name, const Buffer& b) {
  if (a.dtype != b.dtype) {
    throw std::runtime_error(std::string(op) + ": " + a_name + " holds " + dtype_name(a.dtype) + " but " + b_name + " holds " +
                             dtype_name(b.dtype) + " (on the CUDA device both operands of a product share one dtype)");
  }
}

Nf4DeviceWeight device_weight(const Nf4Buffers& w) {
  Nf4DeviceWeight d;
  d.packed = as<uint8_t>(w.packed);
  d.rows = w.rows;
  d.cols = w.cols;
  d.blocksize = w.blocksize;
  d.absmax = f(w.absmax);
  d.absmax_q = as<uint8_t>(w.absmax_q);
  d.nested_absmax = f(w.nested_absmax);
  d.nested_map = f(w.nested_map);
  d.offset = f(w.offset);
  d.nested_blocksize = w.nested_blocksize;
  return d;
}

// f32 values as bf16 in scratch `slot`
bf16* to_bf16(const float* x, int64_t n, int slot) {
  auto* out = static_cast<bf16*>(context().scratch(slot, sizeof(bf16) * static_cast<size_t>(n)));
  k::f32_to_bf16(x, out, n, st());
  return out;
}

}  // namespace

void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, Buffer& A, int64_t lda, Buffer& B, int64_t ldb,
          float beta, Buffer& C, int64_t ldc) {
  same_dtype("gemm", "A", A, "B", B);
  Blas& blas = context().blas();
  if (!is_bf16(A)) {
    same_dtype("gemm", "A", A, "C", C);
    blas.gemm<float, float>(ta, tb, M, N, K, alpha, f(A), lda, f(B), ldb, beta, f(C), ldc);
  } else if (is_bf16(C)) {
    blas.gemm<bf16, bf16>(ta, tb, M, N, K, alpha, as<bf16>(A), lda, as<bf16>(B), ldb, beta, as<bf16>(C), ldc);
  } else {
    blas.gemm<bf16, float>(ta, tb, M, N, K, alpha, as<bf16>(A), lda, as<bf16>(B), ldb, beta, f(C), ldc);
  }
}

void dense_linear_forward(Buffer& W, Buffer* bias, int64_t out, int64_t in, Buffer& x, int64_t rows, Buffer& y, bool acc) {
  same_dtype("denseLinearForward", "W", W, "x", x);
  activations_bf16("denseLinearForward", {{"x", &x}, {"y", &y}, {"bias", bias}});
  if (rows == 0 || out == 0) return;
  Blas& blas = context().blas();
  if (is_bf16(x)) blas.linear_forward<bf16, bf16>(as<bf16>(W), as<bf16>(bias), out, in, as<bf16>(x), rows, as<bf16>(y), acc);
  else blas.linear_forward<float, float>(f(W), f(bias), out, in, f(x), rows, f(y), acc);
}

void dense_linear_input_grad(Buffer& W, int64_t out, int64_t in, Buffer& dy, int64_t rows, Buffer& dx, bool acc) {
  same_dtype("denseLinearInputGrad", "W", W, "dy", dy);
  activations_bf16("denseLinearInputGrad", {{"dy", &dy}, {"dx", &dx}});
  if (rows == 0 || in == 0) return;
  if (out == 0) {
    if (!acc) fill_device(dx.data, static_cast<size_t>(rows * in), dtype_size(dx.dtype), 0);
    return;
  }
  Blas& blas = context().blas();
  if (is_bf16(dy)) blas.linear_input_grad<bf16, bf16>(as<bf16>(W), out, in, as<bf16>(dy), rows, as<bf16>(dx), acc);
  else blas.linear_input_grad<float, float>(f(W), out, in, f(dy), rows, f(dx), acc);
}

void nf4_dequantize_rows(const Nf4Buffers& w, int64_t r0, int64_t r1, Buffer& out) {
  const Nf4DeviceWeight d = device_weight(w);
  if (is_bf16(out)) k::nf4_dequantize_rows(d, r0, r1, as<bf16>(out), st());
  else k::nf4_dequantize_rows(d, r0, r1, f(out), st());
}

namespace {

// Row chunks of an NF4 weight whose dequantized copy in S fits the scratch.
template <class S>
int64_t nf4_chunk_rows(const Nf4Buffers& w) {
  return std::max<int64_t>(1, std::min<int64_t>(w.rows, static_cast<int64_t>(kNf4ScratchBytes / (sizeof(S) * std::max<int64_t>(w.cols, 1)))));
}

// Dequantizes the weight's rows chunk by chunk into scratch 0 (in S) and calls
// product(blas, W, r0, r1) for each chunk W = rows [r0, r1) of the weight.
template <class S, class Product>
void nf4_by_chunks(const Nf4Buffers& w, const Product& product) {
  const Nf4DeviceWeight d = device_weight(w);
  const int64_t chunk = nf4_chunk_rows<S>(w);
  auto* W = static_cast<S*>(context().scratch(0, sizeof(S) * static_cast<size_t>(chunk * w.cols)));
  Blas& blas = context().blas();
  for (int64_t r0 = 0; r0 < w.rows; r0 += chunk) {
    const int64_t r1 = std::min(w.rows, r0 + chunk);
    k::nf4_dequantize_rows(d, r0, r1, W, st());
    product(blas, W, r0, r1);
  }
}

template <class S>
void nf4_forward(const Nf4Buffers& w, Buffer* bias, Buffer& x, int64_t rows, Buffer& y, bool acc) {
  nf4_by_chunks<S>(w, [&](Blas& blas, const S* W, int64_t r0, int64_t r1) {
    blas.gemm<S, S>(false, true, rows, r1 - r0, w.cols, 1.0f, as<S>(x), w.cols, W, w.cols, acc ? 1.0f : 0.0f, as<S>(y) + r0,
                    w.rows, bias ? as<S>(bias) + r0 : nullptr);
  });
}

template <class S>
void nf4_input_grad(const Nf4Buffers& w, Buffer& dy, int64_t rows, Buffer& dx, bool acc) {
  nf4_by_chunks<S>(w, [&](Blas& blas, const S* W, int64_t r0, int64_t r1) {
    blas.gemm<S, S>(false, false, rows, w.cols, r1 - r0, 1.0f, as<S>(dy) + r0, w.rows, W, w.cols, r0 > 0 || acc ? 1.0f : 0.0f,
                    as<S>(dx), w.cols);
  });
}

}  // namespace

void nf4_linear_forward(const Nf4Buffers& w, Buffer* bias, Buffer& x, int64_t rows, Buffer& y, bool acc) {
  activations_bf16("nf4LinearForward", {{"x", &x}, {"y", &y}, {"bias", bias}});
  if (rows == 0 || w.rows == 0) return;
  if (w.cols == 0) throw std::runtime_error("nf4LinearForward: a weight with 0 input features");
  if (is_bf16(x)) nf4_forward<bf16>(w, bias, x, rows, y, acc);
  else nf4_forward<float>(w, bias, x, rows, y, acc);
}

void nf4_linear_input_grad(const Nf4Buffers& w, Buffer& dy, int64_t rows, Buffer& dx, bool acc) {
  activations_bf16("nf4LinearInputGrad", {{"dy", &dy}, {"dx", &dx}});
  if (rows == 0 || w.cols == 0) return;
  if (w.rows == 0) {
    if (!acc) fill_device(dx.data, static_cast<size_t>(rows * w.cols), dtype_size(dx.dtype), 0);
    return;
  }
  if (is_bf16(dy)) nf4_input_grad<bf16>(w, dy, rows, dx, acc);
  else nf4_input_grad<float>(w, dy, rows, dx, acc);
}

float nf4_quantize(Buffer& values, int64_t n, int32_t blocksize, bool dq, int32_t nested_blocksize, Buffer* nested_map,
                   Buffer& packed, Buffer* absmax, Buffer* absmax_q, Buffer* nested_absmax, Buffer* offset) {
  Context& c = context();
  const int64_t blocks = (n + blocksize - 1) / blocksize;
  if (dq && !nested_map) throw std::runtime_error("nf4Quantize: double quant on the CUDA device needs the nestedMap buffer");
  float* am = absmax ? f(absmax) : static_cast<float*>(c.scratch(0, sizeof(float) * static_cast<size_t>(std::max<int64_t>(blocks, 1))));
  float* off = offset ? f(offset) : static_cast<float*>(c.scratch(1, sizeof(float)));
  if (is_bf16(values)) {
    k::nf4_quantize(as<bf16>(values), n, blocksize, dq, nested_blocksize, f(nested_map), as<uint8_t>(packed), am,
                    as<uint8_t>(absmax_q), f(nested_absmax), off, c.stream);
  } else {
    k::nf4_quantize(f(values), n, blocksize, dq, nested_blocksize, f(nested_map), as<uint8_t>(packed), am, as<uint8_t>(absmax_q),
                    f(nested_absmax), off, c.stream);
  }
  float host = 0;
  if (dq) copy_to_host(&host, off, sizeof host);
  return host;
}

void lora_forward(Buffer& x, int64_t rows, int64_t in, int64_t out, int64_t r, Buffer& A, Buffer& B, float scaling,
                  double p, uint32_t seed, Buffer& h, Buffer& y) {
  activations_bf16("loraForward", {{"x", &x}, {"y", &y}});
  if (rows == 0) return;
  Context& c = context();
  Blas& blas = c.blas();
  const size_t n = static_cast<size_t>(rows * in);
  // xd = dropout(x) in f32 (x itself when it is f32 and nothing is dropped)
  const float* xd = f(x);
  if (is_bf16(x) || p > 0) {
    auto* s = static_cast<float*>(c.scratch(0, sizeof(float) * n));
    if (is_bf16(x)) k::lora_dropout(as<bf16>(x), s, rows * in, p, seed, 0, c.stream);
    else k::lora_dropout(f(x), s, rows * in, p, seed, 0, c.stream);
    xd = s;
  }
  blas.gemm<float, float>(false, true, rows, r, in, 1.0f, xd, in, f(A), in, 0.0f, f(h), r);
  if (is_bf16(y)) {
    const bf16* hb = to_bf16(f(h), rows * r, 1);
    const bf16* Bb = to_bf16(f(B), out * r, 2);
    blas.gemm<bf16, bf16>(false, true, rows, out, r, scaling, hb, r, Bb, r, 1.0f, as<bf16>(y), out);
  } else {
    blas.gemm<float, float>(false, true, rows, out, r, scaling, f(h), r, f(B), r, 1.0f, f(y), out);
  }
}

void lora_backward(Buffer& x, Buffer& h, Buffer& dy, int64_t rows, int64_t in, int64_t out, int64_t r, Buffer& A,
                   Buffer& B, float scaling, double p, uint32_t seed, Buffer& dA, Buffer& dB, Buffer* dx) {
  const bool bf = activations_bf16("loraBackward", {{"x", &x}, {"dy", &dy}, {"dx", dx}});
  if (rows == 0) return;
  Context& c = context();
  Blas& blas = c.blas();
  const size_t n = static_cast<size_t>(rows * in);
  auto* gh = static_cast<float*>(c.scratch(1, sizeof(float) * static_cast<size_t>(rows * r)));
  if (bf) {
    // gh = scaling dy B and dB += scaling dy^T h with dy in bf16: B and h rounded to bf16 for the products
    const bf16* Bb = to_bf16(f(B), out * r, 2);
    blas.gemm<bf16, float>(false, false, rows, r, out, scaling, as<bf16>(dy), out, Bb, r, 0.0f, gh, r);
    const bf16* hb = to_bf16(f(h), rows * r, 3);
    blas.gemm<bf16, float>(true, false, out, r, rows, scaling, as<bf16>(dy), out, hb, r, 1.0f, f(dB), r);
  } else {
    blas.gemm<float, float>(false, false, rows, r, out, scaling, f(dy), out, f(B), r, 0.0f, gh, r);
    blas.gemm<float, float>(true, false, out, r, rows, scaling, f(dy), out, f(h), r, 1.0f, f(dB), r);
  }
  const float* xd = f(x);
  if (bf || p > 0) {
    auto* s = static_cast<float*>(c.scratch(0, sizeof(float) * n));
    if (bf) k::lora_dropout(as<bf16>(x), s, rows * in, p, seed, 0, c.stream);
    else k::lora_dropout(f(x), s, rows * in, p, seed, 0, c.stream);
    xd = s;
  }
  blas.gemm<float, float>(true, false, r, in, rows, 1.0f, gh, r, xd, in, 1.0f, f(dA), in);
  if (!dx) return;
  // t = gh A into the dropout scratch (xd is no longer needed), then dx += mask * t
  auto* t = static_cast<float*>(c.scratch(0, sizeof(float) * n));
  blas.gemm<float, float>(false, false, rows, in, r, 1.0f, gh, r, f(A), in, 0.0f, t, in);
  if (bf) k::lora_dropout_backward(t, as<bf16>(*dx), rows * in, p, seed, 0, true, c.stream);
  else k::lora_dropout_backward(t, f(*dx), rows * in, p, seed, 0, true, c.stream);
}

double head_cross_entropy(Buffer& hidden, int64_t N, int64_t C, Buffer& head, int64_t V, Buffer& targets, Buffer& weights,
                          float grad_scale, Buffer* dhidden, bool acc, int64_t chunk) {
  same_dtype("headCrossEntropy", "hidden", hidden, "head", head);
  const bool bf = activations_bf16("headCrossEntropy", {{"hidden", &hidden}, {"dhidden", dhidden}});
  Context& c = context();
  Blas& blas = c.blas();
  chunk = std::max<int64_t>(1, std::min(chunk, N));
  auto* logits = static_cast<float*>(c.scratch(0, sizeof(float) * static_cast<size_t>(chunk * V)));
  auto* row_loss = static_cast<float*>(c.scratch(2, sizeof(float) * static_cast<size_t>(std::max<int64_t>(N, 1))));
  auto* loss = static_cast<double*>(c.scratch(3, sizeof(double)));
  const bool grad = dhidden != nullptr;
  for (int64_t r0 = 0; r0 < N; r0 += chunk) {
    const int64_t rows = std::min(chunk, N - r0);
    if (bf) blas.gemm<bf16, float>(false, true, rows, V, C, 1.0f, as<bf16>(hidden) + r0 * C, C, as<bf16>(head), C, 0.0f, logits, V);
    else blas.gemm<float, float>(false, true, rows, V, C, 1.0f, f(hidden) + r0 * C, C, f(head), C, 0.0f, logits, V);
    k::head_cross_entropy_rows(logits, rows, V, as<int32_t>(targets) + r0, f(weights) + r0, grad_scale, row_loss + r0, grad, c.stream);
    if (!grad) continue;
    if (bf) {
      const bf16* dl = to_bf16(logits, rows * V, 1);
      blas.gemm<bf16, bf16>(false, false, rows, C, V, 1.0f, dl, V, as<bf16>(head), C, acc ? 1.0f : 0.0f, as<bf16>(*dhidden) + r0 * C, C);
    } else {
      blas.gemm<float, float>(false, false, rows, C, V, 1.0f, logits, V, f(head), C, acc ? 1.0f : 0.0f, f(*dhidden) + r0 * C, C);
    }
  }
  if (N == 0) return 0.0;
  k::sum_to_double(row_loss, N, loss, false, c.stream);
  double host = 0;
  copy_to_host(&host, loss, sizeof host);
  return host;
}

}  // namespace ditty::cuda::ops
