# Shared by the callgrind_*.sh benchmarks (sourced): ends one server's
# measurement. `cg_finish PID OUT` dumps the counters of the server running
# under `valgrind --tool=callgrind --callgrind-out-file=OUT` as PID, stops it,
# removes its files and sets `total` to the instructions counted since the last
# `callgrind_control -z` (the dump's summary, or its totals). Not run in `$(...)`:
# `wait` must run in the shell that started the server.
cg_finish() {
  local pid=$1 out=$2
  callgrind_control -d "$pid" >/dev/null 2>&1
  sleep 1
  total=$(cat "$out".* 2>/dev/null | awk '/^summary:/ {s+=$2} /^totals:/ {t+=$2} END {printf "%.0f\n", (s ? s : t)}')
  kill -INT "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  rm -f "$out" "$out".*
}
