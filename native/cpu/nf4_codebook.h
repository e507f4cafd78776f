// bitsandbytes' code tables in float32, built exactly as src/quant/nf4-codebook.ts builds them.
#pragma once
#include <array>

namespace ditty::cpu::nf4_detail {

// The 15 float32 midpoints of NF4_CODE: a value's code is the number of them strictly below it.
const std::array<float, 15>& nf4_thresholds();
// create_dynamic_map(signed=True): 256 sorted values, and its 255 midpoints.
const std::array<float, 256>& dynamic_map();
const std::array<float, 255>& dynamic_thresholds();

}  // namespace ditty::cpu::nf4_detail
