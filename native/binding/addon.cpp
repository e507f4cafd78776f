// The ditty_native addon: device buffers plus one registration function per kernel family.
#include <napi.h>

namespace ditty::binding {
void register_buffers(Napi::Env env, Napi::Object exports);
// weak: a development build of some families only (scripts/build-native-dev.mjs) leaves the others out
__attribute__((weak)) void register_gemm(Napi::Env env, Napi::Object exports);
__attribute__((weak)) void register_common(Napi::Env env, Napi::Object exports);
__attribute__((weak)) void register_rwkv(Napi::Env env, Napi::Object exports);
__attribute__((weak)) void register_neox(Napi::Env env, Napi::Object exports);
}  // namespace ditty::binding

static Napi::Object init(Napi::Env env, Napi::Object exports) {
  using namespace ditty::binding;
  register_buffers(env, exports);
  for (auto reg : {register_gemm, register_common, register_rwkv, register_neox}) {
    if (reg) reg(env, exports);
  }
  return exports;
}

NODE_API_MODULE(ditty_native, init)
