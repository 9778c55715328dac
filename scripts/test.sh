#!/usr/bin/env bash
# Builds everything and runs every test (unit, end-to-end, kernels) with CTest, then the
# reduced sanitizer job and the fuzz smoke (docs/reliability.md).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
(cd build && ctest --output-on-failure --timeout 900 -j 2)
# Sanitizer job: ASan + UBSan on the data-plane unit and end-to-end tests, TSan on the
# concurrency tests (scripts/sanitize.sh --ci). CHAMFERDB_SANITIZE_CI=0 skips it.
if [ "${CHAMFERDB_SANITIZE_CI:-1}" != 0 ]; then ./scripts/sanitize.sh --ci; fi
# Fuzz smoke: each libFuzzer target for CHAMFERDB_FUZZ_SECONDS (default 10) under ASan +
# UBSan, in the sanitizer job's tree. CHAMFERDB_FUZZ_SECONDS=0 skips it.
if [ "${CHAMFERDB_FUZZ_SECONDS:-10}" != 0 ]; then ./scripts/fuzz.sh "${CHAMFERDB_FUZZ_SECONDS:-10}"; fi
