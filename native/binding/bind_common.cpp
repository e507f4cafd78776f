// placeholder: the common kernels register here
#include "args.h"
namespace ditty::binding {
void register_common(Napi::Env, Napi::Object) {}
}  // namespace ditty::binding
