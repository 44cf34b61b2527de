{
  "targets": [
    {
      "target_name": "tailguard",
      "sources": ["native/addon/addon.cc", "native/addon/collector.cc", "native/addon/ring_reader.cc", "native/common/ring_files.c", "native/common/options.c", "native/common/log.c", "native/common/guard.c", "native/common/directory.c", "native/common/policy.c", "native/common/control.c"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native/include"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "TG_VERSION=\"<!(node -p \"require('./package.json').version\")\""],
      "cflags_cc": ["-std=c++17", "-O2", "-fexceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "libraries": ["-lpthread"]
    }
  ]
}
