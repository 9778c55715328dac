#!/usr/bin/env bash
# Sanitizer runs (docs/reliability.md):
#   ./scripts/sanitize.sh            ASan + UBSan build in ./build-asan (gcc), then every unit
#                                    and end-to-end test under it (ctest; the e2e tests start
#                                    the instrumented server binary)
#   ./scripts/sanitize.sh --tsan     ThreadSanitizer build in ./build-tsan, then the
#                                    concurrency tests (admission, fault store, storage,
#                                    collection/registry, fault sweep) and a short crash loop
#                                    and soak against the instrumented server
#   ./scripts/sanitize.sh --asan-only-build / --tsan-only-build   build, do not test
#   ./scripts/sanitize.sh --ci       the reduced sanitizer job ./scripts/test.sh (CI) runs:
#                                    ASan + UBSan (clang, ./build-fuzz, shared with the
#                                    fuzzers) on the data-plane unit tests and on end-to-end
#                                    tests against the instrumented data-plane server
#                                    (`chamferdb-dataplane`: no Kernels service, so the kernel
#                                    families are not instrumented here), then TSan (gcc,
#                                    ./build-tsan-ci) on the concurrency tests.
# Extra arguments after `--` go to ctest (e.g. -- -R server_test).
# The full runs are not part of ./scripts/test.sh: on the 2-core CI machine the whole
# instrumented builds take longer than the CI budget (figures in docs/reliability.md).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=asan
build_only=0
ctest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --tsan) mode=tsan ;;
    --ci) mode=ci ;;
    --asan) mode=asan ;;
    --asan-only-build) mode=asan; build_only=1 ;;
    --tsan-only-build) mode=tsan; build_only=1 ;;
    --) shift; ctest_args=("$@"); break ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
./scripts/install-deps.sh
supp="$PWD/tests/reliability/sanitizer"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp"
export OMP_WAIT_POLICY=PASSIVE
asan_env() {
  # Leak checking stays on; third-party one-time allocations are suppressed in lsan.supp.
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0"
  export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
}
tsan_env() {
  # libgomp is not instrumented: one OpenMP thread keeps TSan to the code it can see.
  export OMP_NUM_THREADS=1
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp"
}
# ctest -L pattern selecting every test of the given test targets (each gtest test is
# labelled with its target, see chamferdb_test in CMakeLists.txt).
labels() { local IFS='|'; echo "^($*)\$"; }

if [ "$mode" = ci ]; then
  # Data-plane unit tests (storage, index, encoders, rerank kernels, collections, registry,
  # snapshots, filters, admission, fault injection, concurrency) and the end-to-end suites
  # that need only the data plane.
  asan_tests=(storage_test fault_store_test index_test hnsw_int8_test metadata_index_test index_refine_test ivf_kernels_test
              encoders_test ball_carving_test chamfer_test chamfer_int8_test admission_test server_test
              data_ops_test refine_search_test rescore_test concurrency_test collection_concurrency_test fault_sweep_test)
  e2e_tests=(test_bad_input test_data_ops test_json_records test_e2e_multivector test_int8_storage)
  tsan_tests=(concurrency_test collection_concurrency_test admission_test fault_store_test storage_test)
  . scripts/sanitized-tree.sh
  configure_sanitized_tree
  echo "== ASan + UBSan build (build-fuzz): ${#asan_tests[@]} test binaries, chamferdb-dataplane"
  cmake --build build-fuzz --parallel "$(nproc)" --target "${asan_tests[@]}" chamferdb-dataplane chamferdb_python_stubs
  [ "$build_only" = 1 ] && exit 0
  asan_env
  (cd build-fuzz && ctest --output-on-failure --timeout 900 -j 2 -L "$(labels "${asan_tests[@]}")" "${ctest_args[@]}")
  # The TSan tree (and the fuzzers) build in the background while the end-to-end tests
  # (mostly waiting on servers and clients) run.
  echo "== ThreadSanitizer build (build-tsan-ci, in the background): ${tsan_tests[*]}"
  mkdir -p build-tsan-ci
  launcher=()
  if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
  # The fuzzers (same tree as the ASan tests; scripts/fuzz.sh runs them after this job)
  # build there too, unless the fuzz smoke is off.
  fuzzers=()
  if [ "${CHAMFERDB_FUZZ_SECONDS:-10}" != 0 ]; then fuzzers=(fuzzers); fi
  (if [ ${#fuzzers[@]} -gt 0 ]; then cmake --build build-fuzz --parallel "$(nproc)" --target fuzzers; fi &&
   cmake -S . -B build-tsan-ci -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
     -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCHAMFERDB_TSAN=ON "${launcher[@]}" >/dev/null &&
   cmake --build build-tsan-ci --parallel "$(nproc)" --target "${tsan_tests[@]}") > build-tsan-ci/build.log 2>&1 &
  tsan_build=$!
  echo "== ASan + UBSan end to end: ${e2e_tests[*]} against build-fuzz/server/chamferdb-dataplane"
  e2e_status=0
  (cd tests && CHAMFERDB_BIN="$PWD/../build-fuzz/server/chamferdb-dataplane" \
     CHAMFERDB_PYTHON_STUBS="$PWD/../build-fuzz/python" CHAMFERDB_DATAPLANE_ONLY=1 PYTHONDONTWRITEBYTECODE=1 \
     /usr/bin/python3 -m unittest "${e2e_tests[@]}") || e2e_status=$?
  tsan_status=0
  wait "$tsan_build" || tsan_status=$?
  if [ "$e2e_status" != 0 ]; then exit "$e2e_status"; fi
  if [ "$tsan_status" != 0 ]; then
    echo "ThreadSanitizer / fuzzer build failed:"; tail -50 build-tsan-ci/build.log; exit "$tsan_status"
  fi
  unset ASAN_OPTIONS LSAN_OPTIONS
  tsan_env
  (cd build-tsan-ci && ctest --output-on-failure --timeout 900 -j 1 -L "$(labels "${tsan_tests[@]}")")
  exit 0
fi

launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
dir="build-$mode"
if [ "$mode" = asan ]; then
  flags=(-DCHAMFERDB_SANITIZE=ON)
else
  flags=(-DCHAMFERDB_TSAN=ON)
fi
# -O1 keeps the instrumented build and the tests reasonably fast; -g for reports.
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
  "${flags[@]}" "${launcher[@]}" >/dev/null
if [ "$mode" = asan ]; then
  cmake --build "$dir" --parallel "$(nproc)"
  [ "$build_only" = 1 ] && exit 0
  asan_env
  cd "$dir"
  ctest --output-on-failure --timeout 1800 -j 2 "${ctest_args[@]}"
else
  tsan_targets=(chamferdb chamferdb_python_stubs admission_test fault_store_test storage_test server_test
                concurrency_test collection_concurrency_test fault_sweep_test)
  cmake --build "$dir" --parallel "$(nproc)" --target "${tsan_targets[@]}"
  [ "$build_only" = 1 ] && exit 0
  tsan_env
  cd "$dir"
  ctest --output-on-failure --timeout 1800 -j 1 -L "$(labels admission_test fault_store_test storage_test server_test concurrency_test collection_concurrency_test fault_sweep_test)" "${ctest_args[@]}"
  cd ..
  export CHAMFERDB_BIN="$PWD/$dir/server/chamferdb" CHAMFERDB_PYTHON_STUBS="$PWD/$dir/python"
  /usr/bin/python3 tests/reliability/crash_loop.py --cycles 2 --seconds 4 --modes nosync
  /usr/bin/python3 tests/reliability/soak.py --seconds 30 --clients 8
fi
