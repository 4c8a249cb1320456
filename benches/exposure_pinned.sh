#!/usr/bin/env bash
# Throughput of Assign with an exposure, export off vs on, with the server
# CPU-bound on a core of its own: the fair worst case for export on a small
# machine (issue 14: throughput on/off at least 0.9, every call a new exposure).
#
# Why a script and not only `bench_exposure --server-cpus 0 --client-cpus 1`:
# that benchmark's client is a tonic client building a `Struct` per call,
# which costs about as much CPU per call as the server, so one client core
# cannot keep one server core busy (it prints `server=` per round: the
# server's cores busy; well under 1.00 there). h2load is light enough: on
# one core it saturates the server's core, so the throughput ratio is the
# server's. Here:
#   - the server (every thread: workers, the batch builder, the sender) runs
#     on SERVER_CPUS (default cpu 0) under `taskset`;
#   - h2load (-c4 -m10, one thread) and the OTLP endpoint run on CLIENT_CPUS
#     (default cpu 1);
#   - dedup is off (`--exposure-dedup-window 0`), so every call exports a new
#     log record, as with a new unit per call (the per-record work does not
#     depend on the unit's text; what dedup would cost is paid with export
#     off too, so leaving it out makes the ratio a little stricter);
#   - the endpoint is benches/tools/empty_server.rs (answers the export
#     `UNIMPLEMENTED` without decoding it, a counted export failure): what a
#     collector does with the records is not the server's cost;
#   - every binary runs export off then on, binaries alternate within each
#     round, and each run prints requests/s, the server's cores busy
#     (from /proc/PID/stat: near 1.00 means the server was the bottleneck)
#     and its CPU per call; the summary is the mean per binary and mode.
#   bash benches/exposure_pinned.sh [ROUNDS] [BIN...]
# default BIN: target/release/cohortd; DURATION (s, default 6), SERVER_CPUS,
# CLIENT_CPUS; NO_BUILD=1 skips the build.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/support/exposure.sh
rounds="${1:-3}"; shift || true
R=target/release
dur="${DURATION:-6}"; scpu="${SERVER_CPUS:-0}"; ccpu="${CLIENT_CPUS:-1}"
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet --bin cohortd --example loadgen --example empty_server
bins=("$@"); [ ${#bins[@]} -gt 0 ] || bins=("$R/cohortd")
tmp="$(mktemp -d)"
taskset -c "$ccpu" $R/examples/empty_server 127.0.0.1:18263 >/dev/null 2>&1 & sink=$!
trap 'kill $sink 2>/dev/null; rm -rf "$tmp"' EXIT
exposure_setup "$tmp"
url=http://127.0.0.1:18273/cohortd.v1.Assignment/Assign
# CPU ticks (1/100 s, user + system, every thread) of a process so far.
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
echo "# Assign+exposure, server on cpu $scpu, h2load and endpoint on cpu $ccpu, ${dur}s per run, dedup off ($(git rev-parse --short HEAD); load $(cut -d' ' -f1-3 /proc/loadavg))"
for round in $(seq "$rounds"); do
  for b in "${bins[@]}"; do
    for mode in off on; do
      env=(); [ "$mode" = on ] && env=(OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:18263)
      env "${env[@]}" COHORTD_LOG=warn taskset -c "$scpu" "$b" serve --config-dir "$tmp/conf" \
        --listen 127.0.0.1:18273 --admin-listen off --ofrep-listen off --sync-listen off \
        --exposure-dedup-window 0 >/dev/null 2>"$tmp/server.log" & pid=$!
      for _ in $(seq 100); do
        h2load -n1 "${H[@]}" "$url" 2>/dev/null | grep -q '1 succeeded' && break; sleep 0.1
      done
      taskset -c "$ccpu" h2load -c4 -m10 -t1 -n 20000 "${H[@]}" "$url" >/dev/null 2>&1   # warm-up
      c0=$(ticks "$pid")
      out=$(taskset -c "$ccpu" h2load -c4 -m10 -t1 -D "$dur" "${H[@]}" "$url" 2>&1)
      c1=$(ticks "$pid")
      kill -INT "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
      rps=$(echo "$out" | awk '/^finished in/ {gsub(",", ""); print $4}')
      ok=$(echo "$out" | awk '/^requests:/ {print $8}')
      awk -v b="$b" -v m="$mode" -v r="$round" -v rps="$rps" -v ok="$ok" -v c="$((c1 - c0))" -v d="$dur" 'BEGIN {
        printf "round %s %-34s export=%-3s %8.0f req/s  server cores %.2f  cpu/call %.2f us  (%s succeeded)\n",
          r, b, m, rps, c / 100 / d, (ok > 0 ? c * 1e4 / ok : 0), ok }'
    done
  done
done | tee "$tmp/runs"
echo "# mean per binary: throughput on/off, server CPU per call on/off"
awk '{ k = $3 SUBSEP $4; n[k]++; rps[k] += $5; cpu[k] += $11; if (!($3 in seen)) { seen[$3] = 1; order[++nb] = $3 } }
  END { for (i = 1; i <= nb; i++) { b = order[i]; off = b SUBSEP "export=off"; on = b SUBSEP "export=on"
    printf "%-34s off %8.0f req/s %.2f us | on %8.0f req/s %.2f us | throughput on/off %.3f  cpu/call on/off %.3f\n",
      b, rps[off] / n[off], cpu[off] / n[off], rps[on] / n[on], cpu[on] / n[on],
      (rps[on] / n[on]) / (rps[off] / n[off]), (cpu[on] / n[on]) / (cpu[off] / n[off]) } }' "$tmp/runs"
