#!/usr/bin/env bash
# Server instructions per flagd ResolveString call, with callgrind: repeatable
# on a shared, noisy machine. Each cohortd binary serves the flagd file of
# compare_flagd.sh under callgrind; after a warm-up its counters are zeroed, ghz
# sends N ResolveString calls (compare_flagd.sh's request: flag `headline`, a
# three-attribute context; -c4, one connection), the counters are dumped and
# their total divided by N is one call's cost (decode, evaluation, exposure,
# response, tonic, hyper, the runtime).
#   bash benches/callgrind_flagd.sh [N] [COHORTD...]   (default: target/release/cohortd)
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/support/callgrind.sh
n="${1:-5000}"; shift || true
servers=("$@"); [ ${#servers[@]} -gt 0 ] || servers=(target/release/cohortd)
bash .ci/setup-go.sh >/dev/null
ghz=.tools/bin/ghz
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp tests/go/testdata/flags.json "$tmp/flags.json"
ctx='"context":{"targetingKey":"user-{{.RequestNumber}}","email":"u{{.RequestNumber}}@example.com","version":"2.1.0"}'
call() { # port count
  "$ghz" --insecure --proto proto/flagd/evaluation/v1/evaluation.proto --import-paths proto \
    --call flagd.evaluation.v1.Service/ResolveString -d "{\"flagKey\":\"headline\",$ctx}" \
    -c 4 --connections 1 -n "$2" -O json "127.0.0.1:$1" 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin).get("statusCodeDistribution",{}).get("OK",0))'
}
echo "# server instructions per ResolveString call (callgrind, N=$n, ghz -c4; $(git rev-parse --short HEAD); load $(cut -d' ' -f1 /proc/loadavg))"
for s in "${servers[@]}"; do
  out="$tmp/cg.out"
  valgrind --tool=callgrind --callgrind-out-file="$out" "$s" serve --config-dir "$tmp" \
    --listen 127.0.0.1:18313 --flagd-fractional v2 --admin-listen off --ofrep-listen off \
    --sync-listen off >/dev/null 2>"$tmp/vg.log" & pid=$!
  for _ in $(seq 120); do
    [ "$(call 18313 1)" = 1 ] && break; sleep 1
  done
  call 18313 1000 >/dev/null   # warm-up
  callgrind_control -z "$pid" >/dev/null 2>&1
  ok=$(call 18313 "$n")
  cg_finish "$pid" "$out"
  printf '%-40s %10s instructions/call  (%s of %s calls succeeded)\n' "$s" "$((total / n))" "$ok" "$n"
done
