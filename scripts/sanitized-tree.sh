# Sourced by scripts/fuzz.sh and scripts/sanitize.sh: configures the clang-14 ASan + UBSan
# tree ./build-fuzz in which every source is compiled with
# -fsanitize=fuzzer-no-link,address,undefined (-DCHAMFERDB_FUZZ=ON). The same tree builds
# the libFuzzer targets and the sanitizer job's data-plane tests and server, so the
# instrumented data plane is compiled once. -O1 and line tables only: fast to build, and
# reports still carry file:line.
configure_sanitized_tree() {
  local launcher=()
  if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache); fi
  cmake -S . -B build-fuzz -G Ninja -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
    -DCHAMFERDB_FUZZ=ON -DCHAMFERDB_BUILD_TESTS=ON "${launcher[@]}" >/dev/null
}
