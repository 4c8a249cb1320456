#!/usr/bin/env bash
# `cohortd analyze` on 1,000,000 exposures + 1,000,000 outcomes (200,000 units),
# as OTLP Collector lines and as flat JSON lines. Prints wall time and peak RSS.
#
#   bash benches/analysis.sh                 # both formats
#   EXPOSURES=5000000 bash benches/analysis.sh
set -euo pipefail
cd "$(dirname "$0")/.."
UNITS=${UNITS:-200000}
EXPOSURES=${EXPOSURES:-1000000}
OUTCOMES=${OUTCOMES:-1000000}

cargo build --release --locked --bin cohortd --example analysis_events
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

for format in otlp flat; do
  target/release/examples/analysis_events --out "$dir/$format" --format "$format" \
    --units "$UNITS" --exposures "$EXPOSURES" --outcomes "$OUTCOMES"
  input=$(ls "$dir/$format"/events.*)
  echo "== $format: $(du -h "$input" | cut -f1), $EXPOSURES exposures + $OUTCOMES outcomes, $UNITS units"
  /usr/bin/time -f "wall %e s, user %U s, max RSS %M KiB" \
    target/release/cohortd analyze --config-dir "$dir/$format/config" \
      --ledger "$dir/looks.json" "$input" > "$dir/$format/report.txt"
  head -3 "$dir/$format/report.txt"
done
