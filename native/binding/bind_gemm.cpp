// Bindings of the products family: GEMM, dense and NF4 linears, NF4 quantization, LoRA and the
// head cross-entropy. Every size is checked here, so the kernels can trust their arguments; buffers
// on the CUDA device go to native/cuda/bind/ops.h.
#include <string>

#include "call.h"
#include "cuda/bind/ops.h"
#include "ditty/common.h"
#include "ditty/gemm.h"
#include "ditty/lora.h"
#include "ditty/nf4.h"

namespace ditty::binding {
namespace {

// elements a row-major [rows, cols] operand with row stride ld spans (0 when empty)
int64_t span(int64_t rows, int64_t cols, int64_t ld) { return rows == 0 || cols == 0 ? 0 : (rows - 1) * ld + cols; }

void check_ld(const Napi::Env& env, const char* name, int64_t ld, int64_t cols) {
  if (ld < std::max<int64_t>(cols, 1)) {
    fail(env, std::string(name) + ": row stride " + std::to_string(ld) + " is below the row length " + std::to_string(cols));
  }
}

bool power_of_two_in(int64_t v, int64_t lo, int64_t hi) { return v >= lo && v <= hi && (v & (v - 1)) == 0; }

// gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
Napi::Value gemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Call c(info);
  const bool ta = bool_arg(info, 0, "transA");
  const bool tb = bool_arg(info, 1, "transB");
  const int64_t M = int_arg(info, 2, "M");
  const int64_t N = int_arg(info, 3, "N");
  const int64_t K = int_arg(info, 4, "K");
  const float alpha = static_cast<float>(number_arg(info, 5, "alpha"));
  const int64_t lda = int_arg(info, 7, "lda", 1);
  const int64_t ldb = int_arg(info, 9, "ldb", 1);
  const float beta = static_cast<float>(number_arg(info, 10, "beta"));
  const int64_t ldc = int_arg(info, 12, "ldc", 1);
  // A is stored [M, K] or [K, M] (transA), B [K, N] or [N, K] (transB)
  check_ld(env, "lda", lda, ta ? M : K);
  check_ld(env, "ldb", ldb, tb ? K : N);
  check_ld(env, "ldc", ldc, N);
  Buffer& A = c.act(6, "A", ta ? span(K, M, lda) : span(M, K, lda));
  Buffer& B = c.act(8, "B", tb ? span(N, K, ldb) : span(K, N, ldb));
  Buffer& C = c.act(11, "C", span(M, N, ldc));
  if (c.cuda()) cuda::ops::gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else cpu::gemm(ta, tb, M, N, K, alpha, fp(A), lda, fp(B), ldb, beta, fp(C), ldc);
  return env.Undefined();
}

// denseLinearForward(W, bias, out, inp, x, rows, y, accumulate)
Napi::Value dense_linear_forward(const Napi::CallbackInfo& info) {
  Call c(info);
  const int64_t out = int_arg(info, 2, "out");
  const int64_t in = int_arg(info, 3, "inp");
  const int64_t rows = int_arg(info, 5, "rows");
  Buffer& W = c.act(0, "W", out * in);
  Buffer* bias = c.act_opt(1, "bias", out);
  Buffer& x = c.act(4, "x", rows * in);
  Buffer& y = c.act(6, "y", rows * out);
  const bool acc = bool_arg(info, 7, "accumulate");
  if (c.cuda()) cuda::ops::dense_linear_forward(W, bias, out, in, x, rows, y, acc);
  else cpu::dense_linear_forward(fp(W), fp(bias), out, in, fp(x), rows, fp(y), acc);
  return info.Env().Undefined();
}

// denseLinearInputGrad(W, out, inp, dy, rows, dx, accumulate)
Napi::Value dense_linear_input_grad(const Napi::CallbackInfo& info) {
  Call c(info);
  const int64_t out = int_arg(info, 1, "out");
  const int64_t in = int_arg(info, 2, "inp");
  const int64_t rows = int_arg(info, 4, "rows");
  Buffer& W = c.act(0, "W", out * in);
  Buffer& dy = c.act(3, "dy", rows * out);
  Buffer& dx = c.act(5, "dx", rows * in);
  const bool acc = bool_arg(info, 6, "accumulate");
  if (c.cuda()) cuda::ops::dense_linear_input_grad(W, out, in, dy, rows, dx, acc);
  else cpu::dense_linear_input_grad(fp(W), out, in, fp(dy), rows, fp(dx), acc);
  return info.Env().Undefined();
}

// A buffer id held in a field of the Nf4Handles object.
Buffer& field_buffer(Call& c, const Napi::Object& o, const char* field, DType t, int64_t need) {
  const Napi::Env env = c.env();
  const std::string name = std::string("w.") + field;
  Napi::Value v = o.Get(field);
  if (!v.IsNumber()) fail(env, name + ": expected a buffer id");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (d < 0 || d != static_cast<double>(static_cast<int32_t>(d))) fail(env, name + ": expected a buffer id, got " + std::to_string(d));
  Buffer* b;
  try {
    b = &buffers().get(static_cast<int32_t>(d));
  } catch (const std::exception& e) {
    fail(env, name + ": " + e.what());
  }
  c.place(*b, name);
  if (b->dtype != t) {
    fail(env, name + ": buffer " + std::to_string(static_cast<int32_t>(d)) + " holds " + dtype_name(b->dtype) + ", expected " + dtype_name(t));
  }
  if (static_cast<uint64_t>(need) > b->count) {
    fail(env, name + ": buffer " + std::to_string(static_cast<int32_t>(d)) + " has " + std::to_string(b->count) +
                  " elements, the weight needs " + std::to_string(need));
  }
  return *b;
}

bool field_absent(const Napi::Object& o, const char* field) {
  Napi::Value v = o.Get(field);
  return v.IsUndefined() || v.IsNull() || (v.IsNumber() && v.As<Napi::Number>().DoubleValue() == -1);
}

int64_t field_int(const Napi::Env& env, const Napi::Object& o, const char* field, int64_t min) {
  Napi::Value v = o.Get(field);
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1.0;
  if (!v.IsNumber() || !std::isfinite(d) || std::floor(d) != d || d < static_cast<double>(min) || d > 9.0e15) {
    fail(env, std::string("w.") + field + ": expected an integer >= " + std::to_string(min));
  }
  return static_cast<int64_t>(d);
}

// The Nf4Handles object (src/engine/native/addon.ts), checked: as the CPU's Nf4Weight and as buffers.
struct Nf4Arg {
  cpu::Nf4Weight w;
  cuda::ops::Nf4Buffers b;
};

Nf4Arg nf4_arg(Call& c, const Napi::CallbackInfo& info, size_t i) {
  Napi::Env env = info.Env();
  Napi::Value v = arg(info, i, "w");
  if (!v.IsObject()) fail(env, "w: expected an Nf4Handles object");
  Napi::Object o = v.As<Napi::Object>();
  Nf4Arg r;
  cpu::Nf4Weight& w = r.w;
  cuda::ops::Nf4Buffers& b = r.b;
  w.rows = field_int(env, o, "rows", 0);
  w.cols = field_int(env, o, "cols", 0);
  const int64_t bs = field_int(env, o, "blocksize", 1);
  if (!power_of_two_in(bs, 32, 4096)) fail(env, "w.blocksize: expected a power of two in 32..4096, got " + std::to_string(bs));
  w.blocksize = static_cast<int32_t>(bs);
  const int64_t n = w.rows * w.cols;
  const int64_t blocks = (n + bs - 1) / bs;
  b.packed = &field_buffer(c, o, "packed", DType::U8, (n + 1) / 2);
  w.packed = static_cast<const uint8_t*>(b.packed->data);
  const bool has_absmax = !field_absent(o, "absmax");
  const bool has_q = !field_absent(o, "absmaxQ");
  if (has_absmax == has_q) fail(env, "w: give either absmax (no double quant) or absmaxQ (double quant), and -1 for the other");
  if (has_absmax) {
    b.absmax = &field_buffer(c, o, "absmax", DType::F32, blocks);
    w.absmax = fp(b.absmax);
    b.rows = w.rows, b.cols = w.cols, b.blocksize = w.blocksize;
    return r;
  }
  const int64_t nbs = field_int(env, o, "nestedBlocksize", 1);
  if (!power_of_two_in(nbs, 32, 4096)) fail(env, "w.nestedBlocksize: expected a power of two in 32..4096, got " + std::to_string(nbs));
  w.nested_blocksize = static_cast<int32_t>(nbs);
  b.absmax_q = &field_buffer(c, o, "absmaxQ", DType::U8, blocks);
  b.nested_absmax = &field_buffer(c, o, "nestedAbsmax", DType::F32, (blocks + nbs - 1) / nbs);
  b.nested_map = &field_buffer(c, o, "nestedMap", DType::F32, 256);
  w.absmax_q = static_cast<const uint8_t*>(b.absmax_q->data);
  w.nested_absmax = fp(b.nested_absmax);
  w.nested_map = fp(b.nested_map);
  Napi::Value off = o.Get("offset");
  if (!off.IsNumber()) fail(env, "w.offset: expected a number");
  w.offset = static_cast<float>(off.As<Napi::Number>().DoubleValue());
  // the CUDA kernels read the offset from device memory
  if (c.cuda()) {
    if (field_absent(o, "offsetBuffer")) fail(env, "w.offsetBuffer: a double-quant weight on the CUDA device needs its offset in a buffer");
    b.offset = &field_buffer(c, o, "offsetBuffer", DType::F32, 1);
  }
  b.rows = w.rows, b.cols = w.cols, b.blocksize = w.blocksize, b.nested_blocksize = w.nested_blocksize;
  return r;
}

// nf4DequantizeRows(w, r0, r1, out)
Napi::Value nf4_dequantize_rows(const Napi::CallbackInfo& info) {
  Call c(info);
  const Nf4Arg a = nf4_arg(c, info, 0);
  const cpu::Nf4Weight& w = a.w;
  const int64_t r0 = int_arg(info, 1, "r0");
  const int64_t r1 = int_arg(info, 2, "r1");
  if (r0 > r1 || r1 > w.rows) {
    fail(info.Env(), "r0, r1: row range [" + std::to_string(r0) + ", " + std::to_string(r1) + ") is outside [0, " + std::to_string(w.rows) + ")");
  }
  Buffer& out = c.act(3, "out", (r1 - r0) * w.cols);
  if (c.cuda()) cuda::ops::nf4_dequantize_rows(a.b, r0, r1, out);
  else cpu::nf4_dequantize_rows(w, r0, r1, fp(out));
  return info.Env().Undefined();
}

// nf4LinearForward(w, bias, x, rows, y, accumulate)
Napi::Value nf4_linear_forward(const Napi::CallbackInfo& info) {
  Call c(info);
  const Nf4Arg a = nf4_arg(c, info, 0);
  const cpu::Nf4Weight& w = a.w;
  const int64_t rows = int_arg(info, 3, "rows");
  Buffer* bias = c.act_opt(1, "bias", w.rows);
  Buffer& x = c.act(2, "x", rows * w.cols);
  Buffer& y = c.act(4, "y", rows * w.rows);
  const bool acc = bool_arg(info, 5, "accumulate");
  if (c.cuda()) cuda::ops::nf4_linear_forward(a.b, bias, x, rows, y, acc);
  else cpu::nf4_linear_forward(w, fp(bias), fp(x), rows, fp(y), acc);
  return info.Env().Undefined();
}

// nf4LinearInputGrad(w, dy, rows, dx, accumulate)
Napi::Value nf4_linear_input_grad(const Napi::CallbackInfo& info) {
  Call c(info);
  const Nf4Arg a = nf4_arg(c, info, 0);
  const cpu::Nf4Weight& w = a.w;
  const int64_t rows = int_arg(info, 2, "rows");
  Buffer& dy = c.act(1, "dy", rows * w.rows);
  Buffer& dx = c.act(3, "dx", rows * w.cols);
  const bool acc = bool_arg(info, 4, "accumulate");
  if (c.cuda()) cuda::ops::nf4_linear_input_grad(a.b, dy, rows, dx, acc);
  else cpu::nf4_linear_input_grad(w, fp(dy), rows, fp(dx), acc);
  return info.Env().Undefined();
}

// nf4Quantize(values, n, blocksize, doubleQuant, nestedBlocksize, packed, absmax, absmaxQ, nestedAbsmax,
//             nestedMap, offsetBuffer) -> offset; the last two are read on the CUDA device only
Napi::Value nf4_quantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Call c(info);
  const int64_t n = int_arg(info, 1, "n");
  const int64_t bs = int_arg(info, 2, "blocksize", 1);
  if (!power_of_two_in(bs, 32, 4096)) fail(env, "blocksize: expected a power of two in 32..4096, got " + std::to_string(bs));
  const bool dq = bool_arg(info, 3, "doubleQuant");
  const int64_t nbs = int_arg(info, 4, "nestedBlocksize", 1);
  if (dq && !power_of_two_in(nbs, 32, 4096)) fail(env, "nestedBlocksize: expected a power of two in 32..4096, got " + std::to_string(nbs));
  const int64_t blocks = (n + bs - 1) / bs;
  Buffer& values = c.act(0, "values", n);
  Buffer& packed = c.u8(5, "packed", (n + 1) / 2);
  Buffer* absmax = nullptr;
  Buffer* absmax_q = nullptr;
  Buffer* nested = nullptr;
  if (dq) {
    absmax = c.f32_opt(6, "absmax", blocks);  // optional with double quant: the raw absmax values
    absmax_q = &c.u8(7, "absmaxQ", blocks);
    nested = &c.f32(8, "nestedAbsmax", (blocks + nbs - 1) / nbs);
  } else {
    absmax = &c.f32(6, "absmax", blocks);
  }
  if (c.cuda()) {
    Buffer* map = dq ? &c.f32(9, "nestedMap", 256) : nullptr;
    Buffer* offset = c.f32_opt(10, "offsetBuffer", 1);
    return Napi::Number::New(env, cuda::ops::nf4_quantize(values, n, static_cast<int32_t>(bs), dq, static_cast<int32_t>(nbs), map,
                                                          packed, absmax, absmax_q, nested, offset));
  }
  float offset = 0.0f;
  cpu::nf4_quantize(fp(values), n, static_cast<int32_t>(bs), dq, static_cast<int32_t>(nbs), static_cast<uint8_t*>(packed.data),
                    fp(absmax), absmax_q ? static_cast<uint8_t*>(absmax_q->data) : nullptr, fp(nested), &offset);
  return Napi::Number::New(env, offset);
}

double probability_arg(const Napi::CallbackInfo& info, size_t i) {
  const double p = number_arg(info, i, "p");
  if (!(p >= 0.0 && p < 1.0)) fail(info.Env(), "p: dropout must be in [0, 1), got " + std::to_string(p));
  return p;
}

uint32_t seed_arg(const Napi::CallbackInfo& info, size_t i) {
  const double s = number_arg(info, i, "seed");
  if (!(s >= 0 && s <= 4294967295.0 && std::floor(s) == s)) fail(info.Env(), "seed: expected an integer in [0, 2^32)");
  return static_cast<uint32_t>(s);
}

// loraForward(x, rows, inp, out, r, A, B, scaling, p, seed, h, y)
Napi::Value lora_forward(const Napi::CallbackInfo& info) {
  Call c(info);
  const int64_t rows = int_arg(info, 1, "rows");
  const int64_t in = int_arg(info, 2, "inp");
  const int64_t out = int_arg(info, 3, "out");
  const int64_t r = int_arg(info, 4, "r", 1);
  Buffer& x = c.act(0, "x", rows * in);
  Buffer& A = c.f32(5, "A", r * in);
  Buffer& B = c.f32(6, "B", out * r);
  const float scaling = static_cast<float>(number_arg(info, 7, "scaling"));
  const double p = probability_arg(info, 8);
  const uint32_t seed = seed_arg(info, 9);
  Buffer& h = c.f32(10, "h", rows * r);
  Buffer& y = c.act(11, "y", rows * out);
  if (c.cuda()) cuda::ops::lora_forward(x, rows, in, out, r, A, B, scaling, p, seed, h, y);
  else cpu::lora_forward(fp(x), rows, in, out, r, fp(A), fp(B), scaling, p, seed, fp(h), fp(y));
  return info.Env().Undefined();
}

// loraBackward(x, h, dy, rows, inp, out, r, A, B, scaling, p, seed, dA, dB, dx)
Napi::Value lora_backward(const Napi::CallbackInfo& info) {
  Call c(info);
  const int64_t rows = int_arg(info, 3, "rows");
  const int64_t in = int_arg(info, 4, "inp");
  const int64_t out = int_arg(info, 5, "out");
  const int64_t r = int_arg(info, 6, "r", 1);
  Buffer& x = c.act(0, "x", rows * in);
  Buffer& h = c.f32(1, "h", rows * r);
  Buffer& dy = c.act(2, "dy", rows * out);
  Buffer& A = c.f32(7, "A", r * in);
  Buffer& B = c.f32(8, "B", out * r);
  const float scaling = static_cast<float>(number_arg(info, 9, "scaling"));
  const double p = probability_arg(info, 10);
  const uint32_t seed = seed_arg(info, 11);
  Buffer& dA = c.f32(12, "dA", r * in);
  Buffer& dB = c.f32(13, "dB", out * r);
  Buffer* dx = c.act_opt(14, "dx", rows * in);
  if (c.cuda()) cuda::ops::lora_backward(x, h, dy, rows, in, out, r, A, B, scaling, p, seed, dA, dB, dx);
  else cpu::lora_backward(fp(x), fp(h), fp(dy), rows, in, out, r, fp(A), fp(B), scaling, p, seed, fp(dA), fp(dB), fp(dx));
  return info.Env().Undefined();
}

// headCrossEntropy(hidden, N, C, head, V, targets, weights, gradScale, dhidden, accumulate, chunk) -> loss sum
Napi::Value head_cross_entropy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Call c(info);
  const int64_t N = int_arg(info, 1, "N");
  const int64_t C = int_arg(info, 2, "C");
  const int64_t V = int_arg(info, 4, "V", 1);
  Buffer& hidden = c.act(0, "hidden", N * C);
  Buffer& head = c.act(3, "head", V * C);
  Buffer& target_buf = c.i32(5, "targets", N);
  Buffer& weight_buf = c.f32(6, "weights", N);
  const float grad_scale = static_cast<float>(number_arg(info, 7, "gradScale"));
  Buffer* dhidden = c.act_opt(8, "dhidden", N * C);
  const bool acc = bool_arg(info, 9, "accumulate");
  const int64_t chunk = int_arg(info, 10, "chunk", 1);
  // the targets are checked on the host (read back once from the CUDA device)
  std::vector<int32_t> host_targets;
  std::vector<float> host_weights;
  if (c.cuda()) {
    host_targets = cuda::ops::read_i32(target_buf, N);
    host_weights = cuda::ops::read_f32(weight_buf, N);
  }
  const int32_t* targets = c.cuda() ? host_targets.data() : static_cast<const int32_t*>(target_buf.data);
  const float* weights = c.cuda() ? host_weights.data() : fp(weight_buf);
  for (int64_t i = 0; i < N; i++) {
    if (weights[i] != 0.0f && (targets[i] < 0 || targets[i] >= V)) {
      fail(env, "targets: targets[" + std::to_string(i) + "] = " + std::to_string(targets[i]) + " is outside [0, " + std::to_string(V) + ")");
    }
  }
  if (c.cuda()) {
    return Napi::Number::New(env, cuda::ops::head_cross_entropy(hidden, N, C, head, V, target_buf, weight_buf, grad_scale, dhidden, acc, chunk));
  }
  return Napi::Number::New(env, cpu::head_cross_entropy(fp(hidden), N, C, fp(head), V, targets, weights, grad_scale, fp(dhidden), acc, chunk));
}

}  // namespace

void register_gemm(Napi::Env env, Napi::Object exports) {
  set_function(env, exports, "gemm", gemm);
  set_function(env, exports, "denseLinearForward", dense_linear_forward);
  set_function(env, exports, "denseLinearInputGrad", dense_linear_input_grad);
  set_function(env, exports, "nf4DequantizeRows", nf4_dequantize_rows);
  set_function(env, exports, "nf4LinearForward", nf4_linear_forward);
  set_function(env, exports, "nf4LinearInputGrad", nf4_linear_input_grad);
  set_function(env, exports, "nf4Quantize", nf4_quantize);
  set_function(env, exports, "loraForward", lora_forward);
  set_function(env, exports, "loraBackward", lora_backward);
  set_function(env, exports, "headCrossEntropy", head_cross_entropy);
}

}  // namespace ditty::binding
