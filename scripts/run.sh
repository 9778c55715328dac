#!/usr/bin/env bash
# Quick start: install what is missing, build, then serve gRPC on 127.0.0.1:50051 with the
# data in ./data. Extra arguments go to the server (e.g. --sync, --listen 0.0.0.0:50051).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh --target chamferdb
exec ./build/server/chamferdb --listen 127.0.0.1:50051 --data-dir ./data "$@"
