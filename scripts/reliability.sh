#!/usr/bin/env bash
# The full reliability runs (docs/reliability.md), one after another; each prints its
# figures. Builds ./build first (Release), like scripts/test.sh.
#
#   ./scripts/reliability.sh                 everything below with the default sizes
#   CRASH_CYCLES=50 SOAK_SECONDS=3600 FUZZ_SECONDS=3600 ./scripts/reliability.sh
#   RELIABILITY_SANITIZE=1 ./scripts/reliability.sh   also the ASan/UBSan and TSan runs
#   ./scripts/reliability.sh crash soak      only some steps (crash faults corruption overload soak fuzz sanitize)
#
# Steps: crash   crash loop, CRASH_CYCLES (20) kill -9 cycles without and with --sync
#        faults  fault-injection sweep (Nth write / sync / read / scan, disk full)
#        corruption  bit flips and truncation of every RocksDB file kind
#        overload    admission control flood test
#        soak    SOAK_SECONDS (600) of mixed traffic from SOAK_CLIENTS (16) clients
#        fuzz    every libFuzzer target for FUZZ_SECONDS (300) each (clang, build-fuzz)
#        sanitize    scripts/sanitize.sh and --tsan (only with RELIABILITY_SANITIZE=1 or named)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=("$@")
if [ ${#steps[@]} -eq 0 ]; then
  steps=(crash faults corruption overload soak fuzz)
  if [ "${RELIABILITY_SANITIZE:-0}" != 0 ]; then steps+=(sanitize); fi
fi
./scripts/build.sh --target chamferdb chamferdb_python_stubs fault_sweep_test fault_store_test >/dev/null
export CHAMFERDB_BIN="$PWD/build/server/chamferdb" CHAMFERDB_PYTHON_STUBS="$PWD/build/python" OMP_WAIT_POLICY=PASSIVE
PY=/usr/bin/python3
echo "load: $(uptime)"
for step in "${steps[@]}"; do
  echo "==== $step ($(date -u +%H:%M:%S))"
  case "$step" in
    crash) $PY tests/reliability/crash_loop.py --cycles "${CRASH_CYCLES:-20}" --seconds "${CRASH_SECONDS:-4}" --modes nosync,sync ;;
    faults) ./build/tests/reliability/fault_sweep_test && ./build/storage/fault_store_test --gtest_brief=1 ;;
    corruption) $PY tests/reliability/corruption.py ;;
    overload) (cd tests && $PY -m unittest -v test_overload) ;;
    soak) $PY tests/reliability/soak.py --seconds "${SOAK_SECONDS:-600}" --clients "${SOAK_CLIENTS:-16}" ;;
    fuzz) ./scripts/fuzz.sh "${FUZZ_SECONDS:-300}" ;;
    sanitize) ./scripts/sanitize.sh && ./scripts/sanitize.sh --tsan ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done
echo "reliability: all steps passed ($(date -u +%H:%M:%S)); load: $(uptime)"
