{
  "variables": {
    # The lab addon's sources are in a git checkout, not in the npm package ("files" in
    # package.json leaves native/lab out): an installed package builds the port addon only.
    "lab_sources%": "<!(node -p \"require('fs').existsSync('native/lab/addon.cc') ? 1 : 0\")"
  },
  "target_defaults": {
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
  },
  "targets": [
    {
      # What lnlbd loads (src/port/native.ts): one source file per concern, addon.cc registers them.
      "target_name": "lnlb_port",
      "sources": [
        "native/addon.cc",
        "native/errors.cc",
        "native/flock.cc",
        "native/hmac.cc",
        "native/ifctl.cc",
        "native/io.cc",
        "native/notify.cc",
        "native/packet-ring.cc",
        "native/packet-socket.cc",
        "native/tap.cc",
        "native/watch.cc"
      ]
    }
  ],
  "conditions": [
    ["lab_sources==1", {
      "targets": [
        {
          # Benchmarks, lab and tests only (lab/native.ts): traffic generator, netns entry.
          "target_name": "lnlb_lab",
          "sources": [
            "native/lab/addon.cc",
            "native/lab/netns.cc",
            "native/lab/notify-listen.cc",
            "native/lab/traffic-gen.cc",
            "native/errors.cc"
          ]
        }
      ]
    }]
  ]
}
