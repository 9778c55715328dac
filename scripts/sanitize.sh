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
# Extra arguments after `--` go to ctest (e.g. -- -R server_test).
# Not part of ./scripts/test.sh: on the 2-core CI machine the instrumented builds alone take
# longer than the CI budget (figures in docs/reliability.md).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=asan
build_only=0
ctest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --tsan) mode=tsan ;;
    --asan) mode=asan ;;
    --asan-only-build) mode=asan; build_only=1 ;;
    --tsan-only-build) mode=tsan; build_only=1 ;;
    --) shift; ctest_args=("$@"); break ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
./scripts/install-deps.sh
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
supp="$PWD/tests/reliability/sanitizer"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp"
export OMP_WAIT_POLICY=PASSIVE
if [ "$mode" = asan ]; then
  cmake --build "$dir" --parallel "$(nproc)"
  [ "$build_only" = 1 ] && exit 0
  # Leak checking stays on; third-party one-time allocations are suppressed in lsan.supp.
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0"
  export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
  cd "$dir"
  ctest --output-on-failure --timeout 1800 -j 2 "${ctest_args[@]}"
else
  tsan_targets=(chamferdb chamferdb_python_stubs admission_test fault_store_test storage_test server_test fault_sweep_test)
  cmake --build "$dir" --parallel "$(nproc)" --target "${tsan_targets[@]}"
  [ "$build_only" = 1 ] && exit 0
  # libgomp is not instrumented: one OpenMP thread keeps TSan to the code it can see.
  export OMP_NUM_THREADS=1
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp"
  cd "$dir"
  ctest --output-on-failure --timeout 1800 -j 1 -R '^(Admission|FaultInjectionStore|StoreContract|RocksStore|CollectionTest|RegistryTest|FaultSweep)' "${ctest_args[@]}"
  cd ..
  export CHAMFERDB_BIN="$PWD/$dir/server/chamferdb" CHAMFERDB_PYTHON_STUBS="$PWD/$dir/python"
  /usr/bin/python3 tests/reliability/crash_loop.py --cycles 2 --seconds 4 --modes nosync
  /usr/bin/python3 tests/reliability/soak.py --seconds 30 --clients 8
fi
