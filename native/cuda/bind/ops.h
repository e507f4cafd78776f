// The CUDA side of every kernel binding (native/binding/bind_*.cpp): plain C++ over checked
// buffers, so the bindings (compiled by g++ without CUDA headers) call it directly. Each function
// takes the same arguments as its ditty::cpu twin with buffers in place of pointers; activations
// may be f32 or bf16 (one dtype per call), parameters, statistics and LoRA tensors are f32.
// Work is queued on the device's stream; functions returning a number wait for it. Errors (a dtype
// mix, a CUDA or cuBLASLt failure) are std::runtime_error with one line.
#pragma once
#include <cstdint>
#include <vector>

#include "ditty/buffer.h"
#include "cuda/device.h"
#include "ditty/neox.h"

namespace ditty::cuda::ops {

// The NF4 weight's buffers (an Nf4Handles object): offset is a one-float device buffer with double quant.
struct Nf4Buffers {
  Buffer* packed = nullptr;
  int64_t rows = 0, cols = 0;
  int32_t blocksize = 64;
  Buffer* absmax = nullptr;
  Buffer* absmax_q = nullptr;
  Buffer* nested_absmax = nullptr;
  Buffer* nested_map = nullptr;
  Buffer* offset = nullptr;
  int32_t nested_blocksize = 256;
};

// products
DITTY_CUDA_API void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, Buffer& A, int64_t lda, Buffer& B, int64_t ldb,
          float beta, Buffer& C, int64_t ldc);
DITTY_CUDA_API void dense_linear_forward(Buffer& W, Buffer* bias, int64_t out, int64_t in, Buffer& x, int64_t rows, Buffer& y, bool acc);
DITTY_CUDA_API void dense_linear_input_grad(Buffer& W, int64_t out, int64_t in, Buffer& dy, int64_t rows, Buffer& dx, bool acc);
DITTY_CUDA_API void nf4_dequantize_rows(const Nf4Buffers& w, int64_t r0, int64_t r1, Buffer& out);
DITTY_CUDA_API void nf4_linear_forward(const Nf4Buffers& w, Buffer* bias, Buffer& x, int64_t rows, Buffer& y, bool acc);
DITTY_CUDA_API void nf4_linear_input_grad(const Nf4Buffers& w, Buffer& dy, int64_t rows, Buffer& dx, bool acc);
// returns the double-quant offset (0 without); `offset` (one float) receives it on the device
DITTY_CUDA_API float nf4_quantize(Buffer& values, int64_t n, int32_t blocksize, bool dq, int32_t nested_blocksize, Buffer* nested_map,
                   Buffer& packed, Buffer* absmax, Buffer* absmax_q, Buffer* nested_absmax, Buffer* offset);
DITTY_CUDA_API void lora_forward(Buffer& x, int64_t rows, int64_t in, int64_t out, int64_t r, Buffer& A, Buffer& B, float scaling,
                  double p, uint32_t seed, Buffer& h, Buffer& y);
DITTY_CUDA_API void lora_backward(Buffer& x, Buffer& h, Buffer& dy, int64_t rows, int64_t in, int64_t out, int64_t r, Buffer& A,
                   Buffer& B, float scaling, double p, uint32_t seed, Buffer& dA, Buffer& dB, Buffer* dx);
DITTY_CUDA_API double head_cross_entropy(Buffer& hidden, int64_t N, int64_t C, Buffer& head, int64_t V, Buffer& targets, Buffer& weights,
                          float grad_scale, Buffer* dhidden, bool acc, int64_t chunk);

// shared
DITTY_CUDA_API void embedding_forward(Buffer& ids, int64_t n, Buffer& table, int64_t C, Buffer& out);
DITTY_CUDA_API void layernorm_forward(Buffer& x, Buffer& w, Buffer& b, int64_t N, int64_t C, float eps, Buffer& out, Buffer& mean,
                       Buffer& rstd);
DITTY_CUDA_API void layernorm_backward(Buffer& dy, Buffer& x, Buffer& w, Buffer& mean, Buffer& rstd, int64_t N, int64_t C, Buffer& dx,
                        bool acc);
DITTY_CUDA_API void add(Buffer& a, Buffer& b, Buffer& out, int64_t n);
DITTY_CUDA_API void add_inplace(Buffer& y, Buffer& x, int64_t n);
DITTY_CUDA_API void scale_inplace(Buffer& x, int64_t n, float s);
DITTY_CUDA_API void adamw_step(Buffer& p, Buffer& g, Buffer& m, Buffer& v, int64_t n, double lr, double beta1, double beta2, double eps,
                double wd, int64_t step);
DITTY_CUDA_API double sum_squares(Buffer& x, int64_t n);
// host int32 ids of a device buffer (the bindings check token ids before a gather)
DITTY_CUDA_API std::vector<int32_t> read_i32(Buffer& b, int64_t n);
DITTY_CUDA_API std::vector<float> read_f32(Buffer& b, int64_t n);

// RWKV-4
DITTY_CUDA_API void time_mix_forward(Buffer& x, Buffer* state, int64_t B, int64_t T, int64_t C, const std::vector<Buffer*>& mixes,
                      const std::vector<Buffer*>& outs);
DITTY_CUDA_API void time_mix_backward(const std::vector<Buffer*>& douts, const std::vector<Buffer*>& mixes, int64_t B, int64_t T, int64_t C,
                       Buffer& dx, bool acc);
DITTY_CUDA_API void wkv_forward(Buffer& decay, Buffer& first, Buffer& k, Buffer& v, int64_t B, int64_t T, int64_t C, Buffer& y,
                 Buffer* state);
DITTY_CUDA_API void wkv_backward(Buffer& decay, Buffer& first, Buffer& k, Buffer& v, Buffer& dy, int64_t B, int64_t T, int64_t C,
                  Buffer& dk, Buffer& dv);
DITTY_CUDA_API void sigmoid_gate_forward(Buffer& a, Buffer& y, Buffer& out, int64_t n);
DITTY_CUDA_API void sigmoid_gate_backward(Buffer& a, Buffer& y, Buffer& dout, Buffer* da, Buffer* dy, int64_t n);
DITTY_CUDA_API void relu_square_forward(Buffer& x, Buffer& out, int64_t n);
DITTY_CUDA_API void relu_square_backward(Buffer& x, Buffer& dy, Buffer& dx, int64_t n);

// GPT-NeoX
DITTY_CUDA_API void qkv_rotary_forward(Buffer& qkv, int64_t B, int64_t T, int64_t heads, int64_t d, int64_t R, double base,
                        int64_t offset, Buffer& q, Buffer& k, Buffer& v);
DITTY_CUDA_API void qkv_rotary_backward(Buffer& dq, Buffer& dk, Buffer& dv, int64_t B, int64_t T, int64_t heads, int64_t d, int64_t R,
                         double base, int64_t offset, Buffer& dqkv);
DITTY_CUDA_API void attention_forward(Buffer& q, Buffer& k, Buffer& v, int64_t B, int64_t H, int64_t T, int64_t S, int64_t d,
                       Buffer& out, Buffer* lse);
DITTY_CUDA_API void attention_backward(Buffer& dout, Buffer& q, Buffer& k, Buffer& v, Buffer& out, Buffer& lse, int64_t B, int64_t H,
                        int64_t T, int64_t d, Buffer& dq, Buffer& dk, Buffer& dv);
DITTY_CUDA_API void gelu_forward(Buffer& x, Buffer& out, int64_t n, cpu::Gelu kind);
DITTY_CUDA_API void gelu_backward(Buffer& x, Buffer& dy, Buffer& dx, int64_t n, cpu::Gelu kind);

}  // namespace ditty::cuda::ops
