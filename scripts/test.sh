#!/usr/bin/env bash
# Builds everything and runs every test (unit, end-to-end, kernels) with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
cd build
ctest --output-on-failure --timeout 900 -j 2
# Fuzz smoke: each libFuzzer target for CHAMFERDB_FUZZ_SECONDS (default 10) under ASan +
# UBSan (clang, build-fuzz; docs/reliability.md). CHAMFERDB_FUZZ_SECONDS=0 skips it.
cd ..
if [ "${CHAMFERDB_FUZZ_SECONDS:-10}" != 0 ]; then ./scripts/fuzz.sh "${CHAMFERDB_FUZZ_SECONDS:-10}"; fi
