#!/usr/bin/env bash
# Tools the benchmark scripts use (not CI: the suite never runs benchmarks).
# h2load (nghttp2-client) is the light HTTP/2 load generator for the server
# comparisons; valgrind gives repeatable instruction counts for the engine.
set -euo pipefail
if command -v h2load >/dev/null && command -v valgrind >/dev/null; then
  exit 0
fi
sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
sudo_ apt-get update -qq
sudo_ apt-get install -y -qq nghttp2-client valgrind
