#!/usr/bin/env bash
# Instruction counts per iteration of every engine benchmark, with callgrind:
# repeatable on a shared, noisy machine where criterion's times swing. Each
# benchmark runs twice under callgrind (N and 2N iterations, ENGINE_COUNT mode of
# benches/engine.rs); the difference divided by N is one iteration's count, with
# setup cancelled out. Quote the output in docs/benchmarks.md.
#   bash benches/engine_callgrind.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-2000}"
bash benches/setup-bench.sh
exe=$(cargo build --release --bench engine --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="engine" and m.get("executable"):
        print(m["executable"])')
count() { # name iterations -> instructions
  ENGINE_COUNT="$1:$2" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$exe" 2>&1 |
    awk '/Collected :/ {print $NF}'
}
echo "# engine instructions per iteration (callgrind, N=$n; $(git rev-parse --short HEAD))"
printf '| %-44s | %14s |\n' benchmark "instructions"
printf '| %-44s | %14s |\n' --- ---
ENGINE_COUNT=list "$exe" | while read -r b; do
  a=$(count "$b" "$n"); c=$(count "$b" $((2 * n)))
  per=$(( (c - a) / n ))
  printf '| %-44s | %14s |\n' "$b" "$per"
done
