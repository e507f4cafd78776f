// placeholder: the rwkv kernels register here
#include "args.h"
namespace ditty::binding {
void register_rwkv(Napi::Env, Napi::Object) {}
}  // namespace ditty::binding
