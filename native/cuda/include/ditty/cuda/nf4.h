// NF4 4-bit weights on a CUDA device, in the bitsandbytes layout of native/include/ditty/nf4.h:
// dequantizing row ranges to bf16 or float (the input of the cuBLASLt GEMMs) and quantizing on the
// device, both bit-exact with ditty::cpu (the same bytes and values). Pointers are device pointers;
// every call only enqueues work on `stream`.
#pragma once
#include <cstdint>

#include "ditty/cuda/runtime.h"
#include "ditty/nf4.h"

namespace ditty::cuda {

// The layout of ditty::cpu::Nf4Weight with every array on the device from load time, the
// double-quant offset too (nf4_quantize writes it there).
using Nf4DeviceWeight = Nf4Layout<const float*>;

// out[(r - r0) * cols + c] for rows [r0, r1): f32(NF4_CODE[nibble] * absmax(block)), as
// ditty::cpu::nf4_dequantize_rows gives it (bf16: that float rounded to nearest even).
// 8 values per thread (one 4-byte load, 16-byte stores) when blocksize % 8 == 0, r0 * cols % 8 == 0
// and out is 16-byte aligned; one value per thread otherwise.
void nf4_dequantize_rows(const Nf4DeviceWeight& w, int64_t r0, int64_t r1, float* out, cudaStream_t stream);
void nf4_dequantize_rows(const Nf4DeviceWeight& w, int64_t r0, int64_t r1, __nv_bfloat16* out, cudaStream_t stream);

// ditty::cpu::nf4_quantize on the device, the same bytes: packed gets ceil(n/2) bytes and absmax
// ceil(n/blocksize) floats (always needed: with double quant it is the scratch the 8-bit absmax
// is made from). With double quant also absmax_q (a byte per block), nested_absmax
// (ceil(blocks/nested_blocksize) floats) and *offset; nested_map is the 256-value dynamic map
// (bitsandbytes create_dynamic_map(signed=True)) the caller keeps for dequantizing. offset may be
// null without double quant (else it gets 0). blocksize must be even. bf16 values are widened
// exactly, so they quantize as their float values do.
// The offset is the mean of the absmax values summed in order in double, as the CPU does: one
// thread adds them all (a chain of dependent double adds, roughly 2 ms for a 5120 x 5120 weight at
// blocksize 64, overlapping nothing else on the stream).
void nf4_quantize(const float* values, int64_t n, int32_t blocksize, bool double_quant, int32_t nested_blocksize,
                  const float* nested_map, uint8_t* packed, float* absmax, uint8_t* absmax_q, float* nested_absmax,
                  float* offset, cudaStream_t stream);
void nf4_quantize(const __nv_bfloat16* values, int64_t n, int32_t blocksize, bool double_quant,
                  int32_t nested_blocksize, const float* nested_map, uint8_t* packed, float* absmax, uint8_t* absmax_q,
                  float* nested_absmax, float* offset, cudaStream_t stream);

}  // namespace ditty::cuda
