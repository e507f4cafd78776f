// Shared by the NF4 files: dequantizing one flat element range (the tile loaders of the linears).
#pragma once
#include <cstdint>

#include "ditty/nf4.h"

namespace ditty::cpu::nf4_detail {

// The float32 absmax of block j (dequantized from 8 bits with double quant).
float block_absmax(const Nf4Weight& w, int64_t j);
// out[0 .. end-start) = the values of flat elements [start, end), on the calling thread.
void dequantize_range(const Nf4Weight& w, int64_t start, int64_t end, float* out, bool simd512);

}  // namespace ditty::cpu::nf4_detail
