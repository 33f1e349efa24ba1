#!/usr/bin/env bash
# Set up .venv (first run only) and run the test suite; with no arguments (CI), also build the wheel
# and run the workflow from it in a fresh environment (scripts/wheel_check.sh). Extra arguments go
# to pytest (and skip the wheel check).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest -q "$@"
if [ $# -eq 0 ]; then
    bash scripts/wheel_check.sh
fi
