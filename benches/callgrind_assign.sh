#!/usr/bin/env bash
# Server instructions per Assign (or AssignAll) call, with callgrind: repeatable
# on a shared, noisy machine where throughput swings. Each server binary runs
# under callgrind; after a warm-up its counters are zeroed, h2load sends N calls
# (the framed request of benches/h2load_assign.sh, -c4 -m10), the counters are
# dumped, and their total divided by N is one call's cost: decoding, evaluation,
# encoding, tonic, hyper and the runtime, everything the server process executes.
#   bash benches/callgrind_assign.sh [N] [assign|assign-all] [SERVER...]
# SERVER is `empty` (benches/tools/empty_server.rs) or a cohortd binary; default:
# empty, /work/base-bin/cohortd if present, target/release/cohortd.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-20000}"; rpc="${2:-assign}"; shift 2 || shift $#
R=target/release
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet --bin cohortd --example loadgen --example empty_server
servers=("$@")
if [ ${#servers[@]} -eq 0 ]; then
  servers=(empty)
  [ -x /work/base-bin/cohortd ] && servers+=(/work/base-bin/cohortd)
  servers+=("$R/cohortd")
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
$R/examples/loadgen request-file --rpc "$rpc" "$tmp/req.bin" >/dev/null
H=(-H 'content-type: application/grpc' -H 'te: trailers' -d "$tmp/req.bin")
method=Assign; [ "$rpc" = assign-all ] && method=AssignAll
echo "# server instructions per $method call (callgrind, N=$n, h2load -c4 -m10; $(git rev-parse --short HEAD); load $(cut -d' ' -f1 /proc/loadavg))"
for s in "${servers[@]}"; do
  out="$tmp/cg.out"
  if [ "$s" = empty ]; then
    [ "$rpc" = assign ] || continue
    url=http://127.0.0.1:18223/cohortd.bench.Empty/Assign
    valgrind --tool=callgrind --callgrind-out-file="$out" $R/examples/empty_server 127.0.0.1:18223 \
      >/dev/null 2>"$tmp/vg.log" & pid=$!
  else
    url=http://127.0.0.1:18213/cohortd.v1.Assignment/$method
    valgrind --tool=callgrind --callgrind-out-file="$out" "$s" serve --config-dir examples/configs \
      --listen 127.0.0.1:18213 --admin-listen off --ofrep-listen off --sync-listen off \
      >/dev/null 2>"$tmp/vg.log" & pid=$!
  fi
  for _ in $(seq 120); do
    h2load -n1 "${H[@]}" "$url" 2>/dev/null | grep -q '1 succeeded' && break; sleep 1
  done
  h2load -c4 -m10 -t1 -n 2000 "${H[@]}" "$url" >/dev/null 2>&1   # warm-up
  callgrind_control -z "$pid" >/dev/null
  ok=$(h2load -c4 -m10 -t1 -n "$n" "${H[@]}" "$url" 2>&1 | awk '/^requests:/ {print $8}')
  callgrind_control -d "$pid" >/dev/null
  sleep 1
  total=$(cat "$out".* 2>/dev/null | awk '/^summary:/ {s+=$2} /^totals:/ {t+=$2} END {print (s ? s : t) + 0}')
  kill -INT "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  rm -f "$out" "$out".*
  printf '%-28s %10s instructions/call  (%s of %s calls succeeded)\n' "$s" "$((total / n))" "$ok" "$n"
done
