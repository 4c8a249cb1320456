#!/usr/bin/env bash
# flagd's evaluator vs cohortd on the SAME flagd-format flag file, same load
# tool, alternating rounds, one run: throughput, p50/p99 latency, server CPU per
# call (utime+stime from /proc/PID/stat over the round) and RSS after the round
# (VmRSS). Two calls are measured: ResolveString of one flag, and ResolveAll
# (every flag of the file, what a provider's bulk prefetch does).
#
#   bash benches/compare_flagd.sh [-r ROUNDS] [-d DURATION] [-c CONCURRENCY] \
#       [-q RATE] [FLAGD_FILE [STRING_FLAG]]
#
# Without -q, ghz runs closed-loop (each of the -c workers sends its next call
# when the last is answered): calls/s is as fast as the slower of client and
# server, and latency includes queueing at that throughput, so p99 compares
# servers at different loads. With -q RATE every server gets the same offered
# load (ghz --rps RATE, total), which is the fair latency comparison when RATE
# is below every server's closed-loop throughput.
#
# Defaults: tests/go/testdata/flags.json (the differential test's file: every
# operator) and its fractional string flag `headline`.
# Both servers are driven by ghz (pinned in .ci/setup-go.sh), a fresh
# targetingKey per request, the same request bytes for both.
# flagd side: tests/go/cmd/flagd-ref (flagd core's own evaluator, see
# docs/clients.md for why not the flagd binary). It buckets with the v2 form,
# so cohortd runs with `--flagd-fractional v2`: both answer identically
# (tests/flagd_differential.rs checks that on this file).
# cohortd side: target/release/cohortd serve (built if missing; $COHORTD_BIN
# overrides). With $COHORTD_BASE_BIN set, a second cohortd (e.g. one built from
# main before a change) runs the same rounds too, as `base` rows: an A/B in one
# run. Loopback only; ghz shares the machine's cores with the server, so
# compare CPU per call and rounds of one run, not runs on different machines.
set -euo pipefail
rounds=3 duration=10s conc=16 rate=0
while getopts "r:d:c:q:" o; do
  case $o in
    r) rounds=$OPTARG ;; d) duration=$OPTARG ;; c) conc=$OPTARG ;; q) rate=$OPTARG ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
if [ $# -gt 2 ]; then
  sed -n '2,32p' "$0" >&2
  exit 2
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
flagd_file=$(realpath "${1:-$root/tests/go/testdata/flags.json}") flag=${2:-headline}
cfg=$(mktemp -d)
cp "$flagd_file" "$cfg/flags.json"
bash "$root/.ci/setup-go.sh"
cohortd=${COHORTD_BIN:-$root/target/release/cohortd}
[ -x "$cohortd" ] || (cd "$root" && cargo build --release --locked --quiet)
ghz="$root/.tools/bin/ghz"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fport=$(free_port) cport=$(free_port) bport=$(free_port)
"$root/.tools/bin/flagd-ref" -f "$flagd_file" -p "$fport" >/dev/null &
fpid=$!
"$cohortd" serve --config-dir "$cfg" --listen "127.0.0.1:$cport" --flagd-fractional v2 \
  --admin-listen off --ofrep-listen off --sync-listen off >/dev/null 2>&1 &
cpid=$!
bpid=
if [ -n "${COHORTD_BASE_BIN:-}" ]; then
  "$COHORTD_BASE_BIN" serve --config-dir "$cfg" --listen "127.0.0.1:$bport" --flagd-fractional v2 \
    --admin-listen off --ofrep-listen off --sync-listen off >/dev/null 2>&1 &
  bpid=$!
fi
trap 'kill $fpid $cpid $bpid 2>/dev/null; wait 2>/dev/null; rm -rf "$cfg"' EXIT
for port in $fport $cport ${bpid:+$bport}; do
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
done
tck=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

round() { # name pid port method data
  local out before after
  out=$(mktemp)
  before=$(cpu_ticks "$2")
  "$ghz" --insecure --proto "$root/proto/flagd/evaluation/v1/evaluation.proto" \
    --import-paths "$root/proto" --call "flagd.evaluation.v1.Service/$4" -d "$5" \
    -c "$conc" -z "$duration" --rps "$rate" --connections 2 -O json "127.0.0.1:$3" > "$out" || true
  after=$(cpu_ticks "$2")
  python3 - "$out" "$1" "$((after - before))" "$tck" "$(rss_kb "$2")" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
name, ticks, tck, rss = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
ok = r.get("statusCodeDistribution", {}).get("OK", 0)
lat = {d["percentage"]: d["latency"] / 1e6 for d in r.get("latencyDistribution") or []}
cpu_us = ticks / tck * 1e6 / ok if ok else float("nan")
errs = r["count"] - ok
print(f"| {name:16} | {r['rps']:10.0f} | {lat.get(50, float('nan')):8.3f} | {lat.get(99, float('nan')):8.3f} "
      f"| {cpu_us:12.1f} | {rss / 1024:8.1f} | {errs:6} |")
PY
  rm -f "$out"
}
ctx='"context":{"targetingKey":"user-{{.RequestNumber}}","email":"u{{.RequestNumber}}@example.com","version":"2.1.0"}'
one="{\"flagKey\":\"$flag\",$ctx}" all="{$ctx}"
echo "| server, call     | calls/s    | p50 ms   | p99 ms   | CPU us/call  | RSS MiB  | errors |"
echo "|------------------|-----------:|---------:|---------:|-------------:|---------:|-------:|"
for _ in $(seq "$rounds"); do
  round "flagd String" "$fpid" "$fport" ResolveString "$one"
  round "cohortd String" "$cpid" "$cport" ResolveString "$one"
  [ -z "$bpid" ] || round "base String" "$bpid" "$bport" ResolveString "$one"
  round "flagd All" "$fpid" "$fport" ResolveAll "$all"
  round "cohortd All" "$cpid" "$cport" ResolveAll "$all"
  [ -z "$bpid" ] || round "base All" "$bpid" "$bport" ResolveAll "$all"
done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg); ghz -c $conc -z $duration --rps $rate (0: unlimited)"
