#!/usr/bin/env bash
# RSS of `cohortd serve` with 1,000 generated experiments: idle, at the peak of
# 2,000 connections opened at once (one Assign each) and of 20,000 streams (100
# connections x 200 concurrent Assign), then every 5 s for 30 s after they close.
# Goal: idle < 20 MiB; within 30 s RSS back within 1.5x of idle.
#   bash benches/rss_churn.sh [extra cohortd env, e.g. MALLOC_ARENA_MAX=2]
# COHORTD_BIN=path/to/cohortd measures that binary (e.g. one built with another
# allocator feature) instead of target/release/cohortd.
set -euo pipefail
cd "$(dirname "$0")/.."
bash benches/setup-bench.sh
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet --bin cohortd --example loadgen
R=target/release
tmp="$(mktemp -d)"
pid=
cleanup() { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
$R/examples/loadgen gen-config --experiments 1000 "$tmp/c1000" >/dev/null
$R/examples/loadgen request-file --rpc assign --experiment gen-exp-00002 "$tmp/a.bin" >/dev/null
env "$@" "${COHORTD_BIN:-$R/cohortd}" serve --config-dir "$tmp/c1000" --listen 127.0.0.1:18213 \
  --admin-listen 127.0.0.1:18214 2>"$tmp/log" & pid=$!
sleep 3
rss() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$pid/status"; }
hwm() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$pid/status"; }
H=(-t1 -H 'content-type: application/grpc' -H 'te: trailers' -d "$tmp/a.bin" http://127.0.0.1:18213/cohortd.v1.Assignment/Assign)
idle=$(rss)
echo "== load $(cut -d' ' -f1-3 /proc/loadavg); env: ${*:-(none)}"
echo "idle: $idle MiB"
out=$(h2load -c2000 -n2000 "${H[@]}" 2>&1 | awk '/^requests:/ {print $8" succeeded"}')
echo "2,000 connections ($out): rss $(rss) MiB, peak $(hwm) MiB"
out=$(h2load -c100 -m200 -n20000 "${H[@]}" 2>&1 | awk '/^requests:/ {print $8" succeeded"}')
echo "20,000 streams ($out): rss $(rss) MiB, peak $(hwm) MiB"
for s in 5 10 15 20 25 30; do
  sleep 5; now=$(rss)
  echo "after ${s}s: $now MiB ($(echo "scale=2; $now / $idle" | bc)x idle)"
done
