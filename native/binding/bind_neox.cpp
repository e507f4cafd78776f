// placeholder: the neox kernels register here
#include "args.h"
namespace ditty::binding {
void register_neox(Napi::Env, Napi::Object) {}
}  // namespace ditty::binding
