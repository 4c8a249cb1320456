#!/usr/bin/env bash
# Server instructions per Assign call with an exposure, export off vs on, with
# callgrind: repeatable on a shared, noisy machine. Each cohortd binary runs
# twice under callgrind (export off; export on to a local gRPC endpoint), with
# dedup off (`--exposure-dedup-window 0`) so that every call exports a new
# log record, the worst case for export. After a warm-up the counters are
# zeroed, h2load sends N calls (-c4 -m10), and the counters are dumped after
# the batch delay (so the last partial batch is built, encoded and sent inside
# the count); the total divided by N is one call's cost, every thread of the
# server included.
# The endpoint is benches/tools/empty_server.rs, which answers the OTLP call
# `UNIMPLEMENTED` without decoding it (a counted export failure in cohortd):
# the receiver's work is not the server's.
#   bash benches/callgrind_exposure.sh [N] [BIN...]
# default BIN: target/release/cohortd.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/support/callgrind.sh
. benches/support/exposure.sh
n="${1:-20000}"; shift || true
R=target/release
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet --bin cohortd --example loadgen --example empty_server
bins=("$@"); [ ${#bins[@]} -gt 0 ] || bins=("$R/cohortd")
tmp="$(mktemp -d)"
$R/examples/empty_server 127.0.0.1:18233 >/dev/null 2>&1 & sink=$!
trap 'kill $sink 2>/dev/null; rm -rf "$tmp"' EXIT
exposure_setup "$tmp"
url=http://127.0.0.1:18213/cohortd.v1.Assignment/Assign
echo "# server instructions per Assign call with an exposure (callgrind, N=$n, dedup off, h2load -c4 -m10; $(git rev-parse --short HEAD); load $(cut -d' ' -f1 /proc/loadavg))"
for b in "${bins[@]}"; do
  for mode in off on; do
    out="$tmp/cg.out"
    env=(); [ "$mode" = on ] && env=(OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:18233)
    env "${env[@]}" valgrind --tool=callgrind --callgrind-out-file="$out" "$b" serve --config-dir "$tmp/conf" \
      --listen 127.0.0.1:18213 --admin-listen off --ofrep-listen off --sync-listen off \
      --exposure-dedup-window 0 >/dev/null 2>"$tmp/vg.log" & pid=$!
    for _ in $(seq 120); do
      h2load -n1 "${H[@]}" "$url" 2>/dev/null | grep -q '1 succeeded' && break; sleep 1
    done
    h2load -c4 -m10 -t1 -n 2000 "${H[@]}" "$url" >/dev/null 2>&1   # warm-up
    sleep 2   # the warm-up's last batch goes out before counting
    callgrind_control -z "$pid" >/dev/null
    ok=$(h2load -c4 -m10 -t1 -n "$n" "${H[@]}" "$url" 2>&1 | awk '/^requests:/ {print $8}')
    sleep 2   # past the 1 s schedule delay: the last batch is exported inside the count
    cg_finish "$pid" "$out"
    printf '%-34s export=%-3s %10s instructions/call  (%s of %s calls succeeded)\n' "$b" "$mode" "$((total / n))" "$ok" "$n"
  done
done
