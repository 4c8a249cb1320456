#!/usr/bin/env bash
# AssignAll over N experiments shaped like the template (25% traffic, three
# variants, targeting on region) against Unleash Edge's evaluate-all
# (GET /api/frontend) on the equivalent features (benches/edge/gen.py), in one
# run, alternating rounds, both driven by h2load with 40 requests in flight
# (cohortd: -c4 -m10 over h2c; Edge: 40 HTTP/1.1 connections, as actix serves
# h2 only over TLS). Reports throughput, server CPU per call and response bytes.
#
# Edge's offline mode refuses to start without client tokens, so the same
# token is given as client and frontend token.
# Edge 20.1.0 is installed into target/bench-tools/edge if missing (a release
# build of Edge: ~15 min) unless UNLEASH_EDGE points at a binary.
#   bash benches/compare_edge.sh [SECONDS] [ROUNDS] [N]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-8}"; rounds="${2:-3}"; n="${3:-76}"
bash benches/setup-bench.sh
edge="${UNLEASH_EDGE:-target/bench-tools/edge/bin/unleash-edge}"
if [ ! -x "$edge" ]; then
  cargo install --locked --no-default-features unleash-edge@20.1.0 --root target/bench-tools/edge
  edge=target/bench-tools/edge/bin/unleash-edge
fi
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet --bin cohortd --example loadgen
R=target/release
tmp="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$tmp"; }
trap cleanup EXIT

python3 benches/edge/gen.py "$n" "$tmp"
$R/examples/loadgen request-file --rpc assign-all "$tmp/all.bin" >/dev/null
$R/cohortd serve --config-dir "$tmp/cohortd" --listen 127.0.0.1:18113 \
  --admin-listen 127.0.0.1:18114 --ofrep-listen off --sync-listen off \
  2>"$tmp/cohortd.log" & cpid=$!; pids+=($cpid)
token='*:development.0123456789abcdef0123456789abcdef'
"$edge" --port 18163 --interface 127.0.0.1 --workers 1 offline \
  --bootstrap-file "$tmp/edge-features.json" --frontend-tokens "$token" --client-tokens "$token" \
  >"$tmp/edge.log" 2>&1 & xpid=$!; pids+=($xpid)
sleep 2

CURL_G=(-s --http2-prior-knowledge -H 'content-type: application/grpc' -H 'te: trailers' --data-binary @"$tmp/all.bin")
C_URL=http://127.0.0.1:18113/cohortd.v1.Assignment/AssignAll
# The same context as the gRPC request (loadgen's context for unit 1).
E_URL='http://127.0.0.1:18163/api/frontend?userId=user-1&properties%5BtargetingKey%5D=user-1&properties%5Bregion%5D=US&properties%5BaccountType%5D=free&properties%5BappVersion%5D=2.4.1'
cbytes=$(curl "${CURL_G[@]}" -o - "$C_URL" | wc -c)
ebytes=$(curl -s -H "Authorization: $token" "$E_URL" -o "$tmp/edge.json" -w '%{http_code} %{size_download}')
echo "== $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $n experiments"
echo "== response: cohortd AssignAll $cbytes bytes (protobuf, gRPC framed; all $n assignments);" \
  "Edge /api/frontend HTTP $ebytes bytes (JSON, only the enabled toggles: $(python3 -c "import json;print(len(json.load(open('$tmp/edge.json'))['toggles']))" 2>/dev/null || echo '?'))"

ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
one() { # name pid h2load-args...
  local name=$1 pid=$2; shift 2
  local t0 t1 out rps ok
  t0=$(ticks "$pid")
  out=$(h2load -t1 -D "$secs" "$@" 2>&1)
  t1=$(ticks "$pid")
  rps=$(echo "$out" | awk '/^finished in/ {print $4}')
  ok=$(echo "$out" | awk '/^requests:/ {print $8}')
  printf '%-8s %10s req/s  cpu/call %7.2f us  succeeded %s  load %s\n' "$name" "$rps" \
    "$(echo "($t1 - $t0) * 10000 / ($ok + 1)" | bc -l)" "$ok" "$(cut -d' ' -f1 /proc/loadavg)"
}
C=(-c4 -m10 -H 'content-type: application/grpc' -H 'te: trailers' -d "$tmp/all.bin" "$C_URL")
E=(--h1 -c40 -m1 -H "Authorization: $token" "$E_URL")
h2load -t1 -n 5000 "${C[@]}" >/dev/null 2>&1; h2load -t1 -n 5000 "${E[@]}" >/dev/null 2>&1
for r in $(seq "$rounds"); do
  one edge "$xpid" "${E[@]}"
  one cohortd "$cpid" "${C[@]}"
done
echo "== gRPC OK AssignAll calls counted by cohortd: $(curl -s http://127.0.0.1:18114/metrics |
  awk '/^cohortd_grpc_requests_total\{.*method="AssignAll".*code="OK"/ {s+=$2} END {print s+0}')"
