#!/usr/bin/env bash
# Assign p99 through gRPC: steady state versus a reload storm.
#
# Starts `cohortd serve` (release) on a kubelet-style config volume of N generated
# experiments, runs benches/tools/loadgen for SECS seconds (steady), then again while
# benches/tools/configmap_writer rewrites the volume every EVERY_MS ms (every 5th
# rewrite invalid), then steady once more. Prints loadgen's lines and the reload
# counters from /metrics.
#
#   bash benches/reload_storm.sh            # N=1000 SECS=10 EVERY_MS=250
#   N=10000 EVERY_MS=500 bash benches/reload_storm.sh
#   BIN=/tmp/base-cohortd NO_BUILD=1 bash benches/reload_storm.sh   # another binary (A/B)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000}
SECS=${SECS:-10}
EVERY_MS=${EVERY_MS:-250}
GRPC=127.0.0.1:${PORT:-18013}
ADMIN=127.0.0.1:${ADMIN_PORT:-18014}

BIN=${BIN:-target/release/cohortd}
[ -n "${NO_BUILD:-}" ] || cargo build --release --bin cohortd --example loadgen --example configmap_writer
dir=$(mktemp -d)
srv=
cleanup() {
  [ -n "$srv" ] && kill "$srv" 2>/dev/null && wait "$srv" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT

target/release/examples/configmap_writer --dir "$dir" --experiments "$N"
COHORTD_LOG=warn "$BIN" serve --config-dir "$dir" \
  --listen "$GRPC" --admin-listen "$ADMIN" --ofrep-listen off --sync-listen off &
srv=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/${GRPC%:*}/${GRPC#*:}") 2>/dev/null && break
  sleep 0.1
done

loadgen() {
  "${LOADGEN:-target/release/examples/loadgen}" --target "http://$GRPC" --rpc assign \
    --experiment exp-00001 --duration "$SECS" | grep -E "calls=|codes="
}
metrics() {
  exec 3<>"/dev/tcp/${ADMIN%:*}/${ADMIN#*:}"
  printf 'GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n' >&3
  grep -E '^cohortd_(config_)?reload' <&3 || true
  exec 3>&-
}

echo "== steady ($N experiments)"
loadgen
echo "== storm (rewrite every ${EVERY_MS} ms)"
target/release/examples/configmap_writer --dir "$dir" --experiments "$N" \
  --every-ms "$EVERY_MS" --seconds "$((SECS + 3))" &
writer=$!
loadgen
wait "$writer"
echo "== steady again"
loadgen
echo "== reload counters"
metrics
