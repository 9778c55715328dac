#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang + ASan + UBSan into ./build-fuzz and runs
# each for SECONDS (default 30) on its seed corpus fuzz/corpus/<target>/ (new inputs go to
# build-fuzz/corpus/<target>/, crashers to build-fuzz/artifacts/). Exit status non-zero if
# any target found a crash, a leak, UB or a timeout.
#
#   ./scripts/fuzz.sh          # 30 s per target
#   ./scripts/fuzz.sh 3600     # an hour per target
#   FUZZ_TARGETS="mbat_json_fuzz" ./scripts/fuzz.sh 600
#   FUZZ_JOBS=2 ./scripts/fuzz.sh 600   # libFuzzer workers per target
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
targets=(${FUZZ_TARGETS:-services_fuzz mbat_json_fuzz cli_jsonl_fuzz cli_npy_fuzz})
./scripts/install-deps.sh
. scripts/sanitized-tree.sh
configure_sanitized_tree
cmake --build build-fuzz --parallel "$(nproc)" --target "${targets[@]}"
mkdir -p build-fuzz/artifacts
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
failed=0
for t in "${targets[@]}"; do
  mkdir -p "build-fuzz/corpus/$t"
  seeds="fuzz/corpus/$t"
  log="build-fuzz/$t.log"
  echo "== $t: ${seconds}s (seeds: $(ls "$seeds" 2>/dev/null | wc -l))"
  jobs=()
  # With -jobs libFuzzer writes each worker's output to fuzz-N.log in the current directory.
  if [ "${FUZZ_JOBS:-1}" -gt 1 ]; then jobs=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS"); fi
  if ./build-fuzz/fuzz/"$t" "build-fuzz/corpus/$t" "$seeds" -max_total_time="$seconds" -timeout=20 \
      -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 "${jobs[@]}" \
      -artifact_prefix="build-fuzz/artifacts/$t-" >"$log" 2>&1; then
    echo "   ok: $(grep -E 'stat::number_of_executed_units' "$log" | awk '{s+=$2} END {print s}') executions," \
      "$(grep -E 'stat::new_units_added' "$log" | awk '{s+=$2} END {print s}') new inputs"
  else
    failed=1
    echo "   FAILED: see $log; crashers in build-fuzz/artifacts/ (add them to $seeds as regression inputs)"
    grep -E 'ERROR|runtime error|SUMMARY|Test unit written' "$log" | head -20 || true
  fi
done
exit "$failed"
