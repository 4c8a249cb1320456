#!/usr/bin/env bash
# Runs flagd's evaluator beside cohortd: tests/go/cmd/flagd-ref, built by
# .ci/setup-go.sh from github.com/open-feature/flagd/core (pinned in
# tests/go/go.mod), serving flagd.evaluation.v1 on 127.0.0.1:PORT from a flagd
# flag file (reloaded when it changes). Foreground; SIGTERM or Ctrl-C stops it.
# Why not the flagd binary: see docs/clients.md ("flagd beside cohortd").
#
#   bash .ci/flagd.sh FLAGS.json PORT
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: bash .ci/flagd.sh FLAGS.json PORT" >&2
  exit 2
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/.ci/setup-go.sh"
exec "$root/.tools/bin/flagd-ref" -f "$1" -p "$2"
