#!/usr/bin/env bash
# Bounded soak of the release binary: mixed calls, reloads (atomic `..data`
# swaps and plain rewrites), stream and connection churn; fails on any failed
# call, a version going backwards, or RSS over the bound (benches/soak.py).
#
#   bash benches/soak.sh                     # SECS=60 CLIENTS=4 RSS_MB=256
#   SECS=300 CLIENTS=8 bash benches/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python="${COHORTD_PYTHON:-.venv/bin/python}"
cargo build --release --bin cohortd
exec "$python" benches/soak.py target/release/cohortd
