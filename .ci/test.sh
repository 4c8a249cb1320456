#!/usr/bin/env bash
# The whole test suite, from a fresh machine. Installs what the tests need
# (a Python virtualenv for interop tests) with the project's own files only.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== python venv (.venv)"
bash .ci/setup-python.sh
export COHORTD_PYTHON="$PWD/.venv/bin/python"

echo "== node modules (tests/node)"
bash .ci/setup-node.sh

echo "== deploy/ validation (yamllint, kustomize, kubernetes-validate, Dockerfile)"
bash .ci/validate-deploy.sh

echo "== import cycles (src/)"
python3 .ci/check-cycles.py
echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --locked
