#!/usr/bin/env bash
# `cohortd analyze` on 1,000,000 exposures + 1,000,000 outcomes (200,000 units),
# as OTLP Collector lines and as flat JSON lines, parsed on one thread and on
# the default (one per core). Prints wall and CPU time, peak RSS and the load
# average (the machine is shared: quote it with the numbers).
#
#   bash benches/analysis.sh                 # both formats
#   EXPOSURES=5000000 bash benches/analysis.sh
#   COHORTD=path/to/cohortd bash benches/analysis.sh   # another build (e.g. an older one)
set -euo pipefail
cd "$(dirname "$0")/.."
UNITS=${UNITS:-200000}
EXPOSURES=${EXPOSURES:-1000000}
OUTCOMES=${OUTCOMES:-1000000}
THREADS=${THREADS:-"1 default"}

cargo build --release --locked --bin cohortd --example analysis_events
bin=${COHORTD:-target/release/cohortd}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

for format in otlp flat; do
  target/release/examples/analysis_events --out "$dir/$format" --format "$format" \
    --units "$UNITS" --exposures "$EXPOSURES" --outcomes "$OUTCOMES"
  input=$(ls "$dir/$format"/events.*)
  echo "== $format: $(du -h "$input" | cut -f1), $EXPOSURES exposures + $OUTCOMES outcomes, $UNITS units"
  cat "$input" > /dev/null # page cache warm: this measures parsing, not the disk
  for threads in $THREADS; do
    args=()
    [ "$threads" = default ] || args=(--threads "$threads")
    echo "-- threads: $threads (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
    /usr/bin/time -f "wall %e s, user %U s, sys %S s, max RSS %M KiB" \
      "$bin" analyze --config-dir "$dir/$format/config" \
        --ledger "$dir/looks.json" "${args[@]}" "$input" > "$dir/$format/report.txt"
    head -3 "$dir/$format/report.txt"
  done
done
