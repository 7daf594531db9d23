{
  "targets": [
    {
      "target_name": "lnlb_port",
      "sources": ["native/port.cc", "native/flock.cc", "native/hmac.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      # C++ exceptions: node-addon-api turns a thrown Napi::Error into a JS exception at the
      # call boundary, so every failure reaches JS as a thrown Error and never aborts.
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions"],
      "configurations": {
        "Release": {
          "cflags!": ["-O3"],
          "cflags": ["-O2"]
        }
      }
    }
  ]
}
