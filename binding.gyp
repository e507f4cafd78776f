{
  "targets": [
    {
      "target_name": "ditty_native",
      "sources": ["<!@(node native/list-sources.cjs)"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native/include", "native"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL", "<!@(node native/list-sources.cjs --defines)"],
      "cflags!": ["-fno-exceptions", "-O2"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-O2"],
      "cflags": ["-O3", "-Wall", "-Wextra", "-fexceptions", "-pthread"],
      "cflags_cc": ["-std=c++20", "-O3", "-Wall", "-Wextra", "-fexceptions", "-frtti", "-pthread"],
      "ldflags": ["-pthread", "-ldl"],
      "libraries": ["<!@(node native/list-sources.cjs --libraries)"]
    }
  ]
}
