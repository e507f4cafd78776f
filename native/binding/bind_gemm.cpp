// placeholder: the gemm kernels register here
#include "args.h"
namespace ditty::binding {
void register_gemm(Napi::Env, Napi::Object) {}
}  // namespace ditty::binding
