#!/usr/bin/env bash
# The whole comparison in one run, printed as one table: cohortd Assign vs the
# empty tonic service (h2load, same bytes), AssignAll vs Unleash Edge's
# evaluate-all, exposure export on vs off (worst case: every call a new record,
# the server alone on one core: benches/exposure_pinned.sh),
# and RSS after a burst of connections and streams. Each part is its own script
# (run them alone for details); this one collects their summary lines.
#   bash benches/compare.sh [SECONDS]   (about 4 + 10*SECONDS/8 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-8}"
log="$(mktemp -d)"
trap 'rm -rf "$log"' EXIT
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet --bin cohortd --example loadgen --example empty_server
echo "machine: $(nproc) cores,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2); load at start $(cut -d' ' -f1-3 /proc/loadavg)"

bash benches/h2load_assign.sh "$secs" 3 >"$log/assign" 2>&1 || true
bash benches/compare_edge.sh "$secs" 3 >"$log/edge" 2>&1 || true
NO_BUILD=1 DURATION="$secs" bash benches/exposure_pinned.sh 2 target/release/cohortd >"$log/expo" 2>&1 || true
bash benches/rss_churn.sh >"$log/rss" 2>&1 || true

# mean of column $2 (req/s) and of "cpu/call X" over the rows named $1 in a file
mean() { awk -v n="$1" '$1==n {r+=$2; for(i=1;i<=NF;i++) if($i=="cpu/call") c+=$(i+1); k++}
  END {if(k) printf "%.0f %.2f", r/k, c/k; else printf "- -"}' "$2"; }
read -r e_rps e_cpu <<<"$(mean empty "$log/assign")"
read -r a_rps a_cpu <<<"$(mean cohortd "$log/assign")"
read -r x_rps x_cpu <<<"$(mean edge "$log/edge")"
read -r c_rps c_cpu <<<"$(mean cohortd "$log/edge")"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a+0 > 0 && b+0 > 0) printf "%.2f", a/b; else printf "-" }'; }
# exposure_pinned.sh's last line: BIN off RPS req/s CPU us | on RPS req/s CPU us | throughput on/off R  cpu/call on/off C
read -r ex_off ex_on ex ex_cpu <<<"$(awk '/throughput on\/off/ {print $3, $9, $16, $19}' "$log/expo" | tail -1)"

idle=$(awk '/^idle/ {print $2}' "$log/rss"); peak=$(grep -o 'peak [0-9.]*' "$log/rss" | tail -1 | cut -d' ' -f2)
after=$(awk '/^after 30s/ {print $3" MiB ("$5")"}' "$log/rss")

printf '\n| comparison | cohortd | other | ratio | goal |\n|---|---|---|---|---|\n'
printf '| Assign vs empty service, throughput (h2load -c4 -m10) | %s/s | %s/s | %s | >= 0.92 |\n' "$a_rps" "$e_rps" "$(ratio "$a_rps" "$e_rps")"
printf '| Assign vs empty service, server CPU per call | %s us | %s us | %s | <= 1.10 |\n' "$a_cpu" "$e_cpu" "$(ratio "$a_cpu" "$e_cpu")"
printf '| AssignAll (76 exps) vs Edge /api/frontend, throughput | %s/s | %s/s | %s | >= 5 |\n' "$c_rps" "$x_rps" "$(ratio "$c_rps" "$x_rps")"
printf '| AssignAll vs Edge, server CPU per call | %s us | %s us | %s | |\n' "$c_cpu" "$x_cpu" "$(ratio "$c_cpu" "$x_cpu")"
printf '| exposure export on / off, every call a new record, server alone on one core (throughput) | %s/s | %s/s | %s | >= 0.90 |\n' "${ex_on:--}" "${ex_off:--}" "${ex:--}"
printf '| exposure export on / off, server CPU per call | | | %s | |\n' "${ex_cpu:--}"
printf '| RSS, 1,000 experiments: idle / peak / 30 s after the burst | %s MiB / %s MiB / %s | | | idle < 20, after <= 1.5x |\n' "${idle:--}" "${peak:--}" "${after:--}"
echo "load at end $(cut -d' ' -f1-3 /proc/loadavg); details: rerun the part's script"
