{
  "targets": [
    {
      "target_name": "pmemu_native",
      "sources": ["src/pmem_core.c", "src/baseline.c", "src/binding.cc"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_c": ["-std=gnu11"],
      "cflags_cc": ["-O2", "-std=gnu++17", "-Wno-unused-parameter"],
      "conditions": [["OS=='mac'", { "xcode_settings": { "OTHER_CFLAGS": ["-O2"] } }]]
    }
  ]
}
