#!/usr/bin/env bash
# Create .venv (or $MLIP_VENV) with a CPU build of torch and mlip installed in editable mode.
# Idempotent: reruns skip the install when pyproject.toml has not changed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${MLIP_VENV:-.venv}"
TORCH_SPEC="${MLIP_TORCH_SPEC:-torch==2.13.0}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
STAMP="$VENV/.mlip-installed"
HASH="$(sha256sum pyproject.toml | cut -d' ' -f1) $TORCH_SPEC"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ]; then
    exit 0
fi
echo "[setup] installing $TORCH_SPEC and mlip into $VENV (first run takes a few minutes)"
# torch first and pinned: a bare 'torch' requirement could otherwise pull a multi-GB CUDA build.
"$VENV/bin/pip" install --disable-pip-version-check -q "$TORCH_SPEC"
"$VENV/bin/pip" install --disable-pip-version-check -q -e ".[test]"
echo "$HASH" > "$STAMP"
