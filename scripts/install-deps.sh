#!/usr/bin/env bash
# Installs chamferdb's build and test dependencies from Debian 12 packages.
# Idempotent: when every package is already installed it does nothing (no apt-get at all).
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libfaiss-dev libopenblas-dev librocksdb-dev
  libspdlog-dev libfmt-dev libcpp-httplib-dev nlohmann-json3-dev libeigen3-dev libfftw3-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcairo2-dev
  python3-grpcio python3-numpy python3-protobuf python3-matplotlib
  clang-14 libclang-rt-14-dev libomp-14-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
