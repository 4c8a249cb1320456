#!/usr/bin/env bash
# Installs the OpenFeature Node SDK and flagd provider for the Node interop test
# into tests/node/node_modules, exactly as pinned by tests/node/package-lock.json.
# Idempotent: reinstalls only when the lock file changed.
set -euo pipefail
cd "$(dirname "$0")/../tests/node"
if ! command -v npm >/dev/null; then
  echo "setup-node: npm not found; install Node.js 18+ to run the Node interop test" >&2
  exit 1
fi
stamp=node_modules/.lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -d node_modules ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
# No install scripts: nothing in this tree needs one (protobufjs's only checks versions).
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
