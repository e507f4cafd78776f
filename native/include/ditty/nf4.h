// NF4 4-bit weights in the bitsandbytes layout (with or without double quantization) and the
// products that dequantize them tile by tile, never as a whole float copy.
#pragma once
#include <cstdint>

namespace ditty {

// A frozen [rows=out, cols=in] weight; flat element i = r*cols + c. Byte i/2 holds element i in its
// high nibble when i is even, low nibble when odd. Block j = i / blocksize has absmax:
//   absmax[j]                                                   without double quant
//   f32(f32(nested_map[absmax_q[j]] * nested_absmax[j / nested_blocksize]) + offset)   with it
// and element value f32(NF4_CODE[nibble] * absmax(j)).
// Offset is how the double-quant offset is held: a float on the CPU (ditty::cpu::Nf4Weight), a
// device pointer to one float on a CUDA device (ditty::cuda::Nf4DeviceWeight, ditty/cuda/nf4.h).
template <class Offset>
struct Nf4Layout {
  const uint8_t* packed = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  int32_t blocksize = 64;
  const float* absmax = nullptr;         // without double quant, else null
  const uint8_t* absmax_q = nullptr;     // with double quant
  const float* nested_absmax = nullptr;  // with double quant
  const float* nested_map = nullptr;     // with double quant: 256 values
  Offset offset{};                       // with double quant
  int32_t nested_blocksize = 256;
};

}  // namespace ditty

namespace ditty::cpu {

using Nf4Weight = Nf4Layout<float>;

extern const float NF4_CODE[16];

// out[(r - r0) * cols + c] for rows [r0, r1): the exact values bitsandbytes dequantizes to.
void nf4_dequantize_rows(const Nf4Weight& w, int64_t r0, int64_t r1, float* out);
// y[rows,out] (+)= x[rows,in] W^T + bias (bias may be null)
void nf4_linear_forward(const Nf4Weight& w, const float* bias, const float* x, int64_t rows, float* y, bool accumulate);
// dx[rows,in] (+)= dy[rows,out] W
void nf4_linear_input_grad(const Nf4Weight& w, const float* dy, int64_t rows, float* dx, bool accumulate);

// Quantizes n values bit-exactly as bitsandbytes quantize_4bit(nf4) (and src/quant/nf4.ts):
// packed gets ceil(n/2) bytes. Without double quant absmax gets ceil(n/blocksize) floats; with it
// absmax_q gets one byte per block, nested_absmax ceil(blocks/nested_blocksize) floats, *offset the mean.
void nf4_quantize(const float* values, int64_t n, int32_t blocksize, bool double_quant, int32_t nested_blocksize,
                  uint8_t* packed, float* absmax, uint8_t* absmax_q, float* nested_absmax, float* offset);

}  // namespace ditty::cpu
