#include "ditty/gemm.h"
namespace ditty::cpu {
const char* gemm_implementation() { return "none"; }
}
