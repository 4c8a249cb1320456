#!/usr/bin/env bash
# The server benchmark, in one session on one machine: Assign and AssignAll
# throughput and latency against the empty tonic service (the floor gRPC costs
# here), and the RSS of `cohortd serve` with 1,000 generated experiments.
#   bash benches/bench_server.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
cargo build --release --quiet --bin cohortd --example loadgen --example empty_server
R=target/release
tmp="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

$R/cohortd serve --config-dir examples/configs --listen 127.0.0.1:18013 \
  --admin-listen 127.0.0.1:18014 --ofrep-listen off --sync-listen off 2>"$tmp/cohortd.log" & cpid=$!; pids+=($cpid)
$R/examples/empty_server 127.0.0.1:18023 2>"$tmp/empty.log" & epid=$!; pids+=($epid)
sleep 1
echo "== machine: $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
run() { $R/examples/loadgen --duration "$secs" --warmup 2 "$@" | sed 's/^/   /'; }
E=(--target http://127.0.0.1:18023 --server-pid "$epid" --rpc empty)
C=(--target http://127.0.0.1:18013 --server-pid "$cpid")
for round in 1 2 3; do
  echo "== round $round: empty";  run "${E[@]}"
  echo "== round $round: Assign"; run "${C[@]}" --rpc assign
done
echo "== AssignAll";  run "${C[@]}" --rpc assign-all
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"

$R/examples/loadgen gen-config --experiments 1000 "$tmp/c1000"
$R/cohortd serve --config-dir "$tmp/c1000" --listen 127.0.0.1:18033 \
  --admin-listen 127.0.0.1:18034 --ofrep-listen off --sync-listen off 2>"$tmp/c1000.log" & pid=$!; pids+=($pid)
sleep 2
rss() { grep -E 'VmRSS|VmHWM' "/proc/$pid/status" | tr -s ' \t' ' ' | tr '\n' ' '; echo; }
echo "== RSS, 1000 experiments, idle: $(rss)"
$R/examples/loadgen --target http://127.0.0.1:18033 --rpc assign --experiment gen-exp-00002 \
  --duration 5 --warmup 1 | sed 's/^/   /'
$R/examples/loadgen --target http://127.0.0.1:18033 --rpc assign-all --duration 5 --warmup 1 | sed 's/^/   /'
echo "== RSS, 1000 experiments, after Assign and AssignAll load: $(rss)"
