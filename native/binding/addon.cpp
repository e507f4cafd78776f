// The ditty_native addon: device buffers plus one registration function per kernel family.
#include <napi.h>

namespace ditty::binding {
void register_buffers(Napi::Env env, Napi::Object exports);
void register_gemm(Napi::Env env, Napi::Object exports);
void register_common(Napi::Env env, Napi::Object exports);
void register_rwkv(Napi::Env env, Napi::Object exports);
void register_neox(Napi::Env env, Napi::Object exports);
}  // namespace ditty::binding

static Napi::Object init(Napi::Env env, Napi::Object exports) {
  using namespace ditty::binding;
  register_buffers(env, exports);
  register_gemm(env, exports);
  register_common(env, exports);
  register_rwkv(env, exports);
  register_neox(env, exports);
  return exports;
}

NODE_API_MODULE(ditty_native, init)
