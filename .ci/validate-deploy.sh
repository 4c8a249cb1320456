#!/usr/bin/env bash
# Offline validation of deploy/: yamllint, kustomize renders, kubernetes-validate
# --strict, sidecar invariants, the collector config and the Dockerfile. Prints
# PASS/FAIL per check and "N passed, N failed, N skipped"; exits 1 on any failure.
# Needs the venv from .ci/setup-python.sh; uses kubectl only when it is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup-python.sh
exec .venv/bin/python .ci/validate_deploy.py "$@"
