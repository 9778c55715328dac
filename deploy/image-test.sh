#!/usr/bin/env bash
# Proves the Dockerfile without a Docker engine: builds a local debian:bookworm-slim base
# with debootstrap, builds the image with podman (chroot isolation), starts the server from
# the image with buildah, checks health, ingests a sample file with the CLI, searches, stops.
# Also validates deploy/docker-compose.yml with docker-compose. Needs root and the
# packages podman buildah debootstrap docker-compose (installed if missing).
# Takes ~20-30 minutes on 2 cores (mostly the image's compile step); run it with
#   CHAMFERDB_IMAGE_TEST=1 ./scripts/test.sh     (CTest then runs it as py_image_test)
# or directly: deploy/image-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=${CHAMFERDB_IMAGE_WORK:-/var/tmp/chamferdb-image}
mkdir -p "$work"

need=()
for p in podman buildah debootstrap docker-compose; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

echo "== compose file"
docker-compose -f deploy/docker-compose.yml config -q
docker-compose -f deploy/docker-compose.yml --profile ingest --profile monitoring config -q

echo "== base image debian:bookworm-slim"
if ! podman image exists docker.io/library/debian:bookworm-slim; then
  rootfs="$work/rootfs"
  if [ ! -x "$rootfs/bin/sh" ]; then
    rm -rf "$rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
    # The image's apt uses the same mirror the host uses.
    cp /etc/apt/sources.list "$rootfs/etc/apt/sources.list" 2>/dev/null || true
    cp -r /etc/apt/sources.list.d/. "$rootfs/etc/apt/sources.list.d/" 2>/dev/null || true
  fi
  tar -C "$rootfs" -c . | podman import - docker.io/library/debian:bookworm-slim
fi

echo "== build image"
podman build --isolation chroot -t chamferdb:latest -f Dockerfile .

echo "== run server from the image"
ctr=$(buildah from --name chamferdb-image-test-$$ chamferdb:latest)
cleanup() {
  kill -TERM "${server_pid:-0}" 2>/dev/null && wait "${server_pid}" 2>/dev/null || true
  buildah rm "$ctr" >/dev/null 2>&1 || true
}
trap cleanup EXIT
port=$((20000 + RANDOM % 20000))
buildah run --isolation chroot --env CHAMFERDB_LISTEN=127.0.0.1:$port --env CHAMFERDB_DATA_DIR=/tmp/data \
  --env CHAMFERDB_METRICS_PORT=0 "$ctr" -- /usr/local/bin/chamferdb &
server_pid=$!
for i in $(seq 1 60); do
  if buildah run --isolation chroot --env CHAMFERDB_LISTEN=127.0.0.1:$port "$ctr" -- \
       /usr/local/bin/chamferdb --health-probe >/dev/null 2>&1; then break; fi
  sleep 1
done
buildah run --isolation chroot --env CHAMFERDB_LISTEN=127.0.0.1:$port "$ctr" -- /usr/local/bin/chamferdb --health-probe

echo "== ingest and search with the image's CLI"
/usr/bin/python3 - "$work/sample.jsonl" "$work/queries.jsonl" <<'PY'
import json, sys, random
random.seed(1)
def vec(): 
    v = [random.gauss(0, 1) for _ in range(16)]
    n = sum(x * x for x in v) ** 0.5
    return [x / n for x in v]
docs = [{"id": f"d{i}", "vectors": [vec() for _ in range(4)], "metadata": {"i": i}} for i in range(50)]
open(sys.argv[1], "w").write("\n".join(json.dumps(d) for d in docs) + "\n")
open(sys.argv[2], "w").write(json.dumps({"id": "q0", "vectors": docs[7]["vectors"]}) + "\n")
PY
cli() { buildah run --isolation chroot -v "$work:/work" "$ctr" -- /usr/local/bin/chamferdb-cli --server 127.0.0.1:$port "$@"; }
cli collections create sample --dim 16
cli ingest --collection sample --format jsonl --no-checkpoint /work/sample.jsonl
out=$(cli search --collection sample --queries /work/queries.jsonl --k 3)
echo "$out"
echo "$out" | grep -q '"id":"d7"\|"id": "d7"'
echo "image test: OK"
