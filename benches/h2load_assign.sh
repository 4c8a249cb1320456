#!/usr/bin/env bash
# Assign against the empty tonic service with a light client: h2load sends the
# same framed AssignRequest bytes (5-attribute context, unit user-1) to both;
# the empty service decodes it and answers a constant response of the same shape.
# Rounds alternate empty/cohortd; each reports throughput (h2load), server CPU per
# call (/proc/PID/stat over the round) and gRPC OKs (cohortd's request counter;
# the empty service prints its count at exit). h2load itself checks only the
# HTTP status, hence the separate gRPC counts.
# COHORTD_BASE=path/to/cohortd adds that binary (e.g. one built from main) as a
# third server in the same alternating rounds, for before/after comparisons.
#   bash benches/h2load_assign.sh [SECONDS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-8}"; rounds="${2:-3}"
bash benches/setup-bench.sh
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet --bin cohortd --example loadgen --example empty_server
R=target/release
tmp="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$tmp"; }
trap cleanup EXIT

$R/examples/loadgen request-file --rpc assign "$tmp/assign.bin" >/dev/null
$R/cohortd serve --config-dir examples/configs --listen 127.0.0.1:18013 \
  --admin-listen 127.0.0.1:18014 2>"$tmp/cohortd.log" & cpid=$!; pids+=($cpid)
$R/examples/empty_server 127.0.0.1:18023 2>"$tmp/empty.log" & epid=$!; pids+=($epid)
base="${COHORTD_BASE:-}"
if [ -n "$base" ]; then
  "$base" serve --config-dir examples/configs --listen 127.0.0.1:18033 --admin-listen 127.0.0.1:18034 \
    --ofrep-listen off --sync-listen off 2>"$tmp/base.log" & bpid=$!; pids+=($bpid)
fi
sleep 1

ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }   # utime+stime, USER_HZ=100
oks() { curl -s "http://127.0.0.1:${1:-18014}/metrics" | awk '/^cohortd_grpc_requests_total\{.*method="Assign".*code="OK"/ {s+=$2} END {print s+0}'; }
H=(-H 'content-type: application/grpc' -H 'te: trailers' -d "$tmp/assign.bin")
one() { # name pid url
  local t0 t1 o0 o1 out rps ok
  local admin=18014; [ "$1" = base ] && admin=18034
  t0=$(ticks "$2"); o0=$(oks $admin)
  out=$(h2load -c4 -m10 -t1 -D "$secs" "${H[@]}" "$3" 2>&1)
  t1=$(ticks "$2"); o1=$(oks $admin)
  rps=$(echo "$out" | awk '/^finished in/ {gsub(",","",$4); print $4}')
  ok=$(echo "$out" | awk '/^requests:/ {print $8}')
  [ "$1" = empty ] || ok="$ok (gRPC OK $((o1 - o0)))"
  local calls=$(echo "$out" | awk '/^requests:/ {print $8}')
  printf '%-8s %10s req/s  cpu/call %6.2f us  succeeded %s  load %s\n' "$1" "$rps" \
    "$(echo "($t1 - $t0) * 10000 / ($calls + 1)" | bc -l)" "$ok" "$(cut -d' ' -f1 /proc/loadavg)"
}
echo "== $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== one response each (grpc-status trailer):"
for u in http://127.0.0.1:18023/cohortd.bench.Empty/Assign http://127.0.0.1:18013/cohortd.v1.Assignment/Assign; do
  curl -s --http2-prior-knowledge -H 'content-type: application/grpc' -H 'te: trailers' \
    --data-binary @"$tmp/assign.bin" -o "$tmp/resp.bin" -D - "$u" | tr -d '\r' | grep -i grpc-status | tr '\n' ' '
  echo " response $(stat -c %s "$tmp/resp.bin") bytes  $u"
done
urls=(http://127.0.0.1:18023/cohortd.bench.Empty/Assign http://127.0.0.1:18013/cohortd.v1.Assignment/Assign)
[ -n "$base" ] && urls+=(http://127.0.0.1:18033/cohortd.v1.Assignment/Assign)
for u in "${urls[@]}"; do
  h2load -c4 -m10 -t1 -n 20000 "${H[@]}" "$u" >/dev/null 2>&1   # warm-up, not measured
done
for r in $(seq "$rounds"); do
  one empty "$epid" http://127.0.0.1:18023/cohortd.bench.Empty/Assign
  [ -n "$base" ] && one base "$bpid" http://127.0.0.1:18033/cohortd.v1.Assignment/Assign
  one cohortd "$cpid" http://127.0.0.1:18013/cohortd.v1.Assignment/Assign
done
kill -INT "$epid"; wait "$epid" 2>/dev/null || true
grep answered "$tmp/empty.log" | sed 's/^/== /'
