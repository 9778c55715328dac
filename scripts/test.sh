#!/usr/bin/env bash
# Builds everything and runs every test (unit, end-to-end, kernels) with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
cd build
ctest --output-on-failure --timeout 900 -j 2
