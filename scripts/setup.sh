#!/usr/bin/env bash
# Create .venv (or $MLIP_VENV) with torch (default: torch==2.13.0, the CPU build) and mlip
# installed in editable mode with its test and torch-sim extras. Reruns skip the install while
# pyproject.toml and the torch spec are unchanged.
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

pip_install() {
    local log
    log="$(mktemp)"
    if ! "$VENV/bin/pip" install --disable-pip-version-check -q "$@" >"$log" 2>&1; then
        grep -v "is ignored: it is neither" "$log" >&2 || true
        rm -f "$log"
        echo "[setup] pip install $* failed" >&2
        exit 1
    fi
    grep -v "is ignored: it is neither" "$log" || true
    rm -f "$log"
}

echo "[setup] installing $TORCH_SPEC and mlip into $VENV (first run takes a few minutes)"
# torch first and pinned: a bare 'torch' requirement would otherwise pull a multi-GB CUDA build.
pip_install "$TORCH_SPEC"
pip_install -e ".[test,torchsim]"
"$VENV/bin/python" -c "import torch, mlip; print(f'[setup] torch {torch.__version__}, mlip {mlip.__version__} ready')"
echo "$HASH" > "$STAMP"
