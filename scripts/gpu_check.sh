#!/usr/bin/env bash
# The CUDA check of a session that is lent a GPU (benchmarks/cuda_check.py), prepared so that one device call runs it.
#
#   bash scripts/gpu_check.sh prepare   # here, with the package index: wheels the GPU image lacks -> .device_wheels/
#   bash scripts/gpu_check.sh run       # on the GPU machine (device tool: carry [".device_wheels"], timeout ~540 s)
#
# The GPU image has Python 3.12 with torch, e3nn, lightning, h5py and scipy but no ASE, vesin, torch-sim or
# jsonargparse, and nothing can be fetched there: `prepare` downloads those wheels for Python 3.12, `run` unpacks
# them into a folder on PYTHONPATH beside the image's own packages (its python3 is itself a venv, so a venv made
# from it would not see its torch), puts this checkout first on PYTHONPATH, then runs the check and writes
# $OUT/cuda_check.json (benchmarks/results/cuda_check.json without $OUT).
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=.device_wheels
case "${1:-}" in
  prepare)
    PY=${PYTHON:-.venv/bin/python}
    mkdir -p "$WHEELS"
    "$PY" -m pip download --dest "$WHEELS" --only-binary=:all: --python-version "${DEVICE_PYTHON_VERSION:-3.12}" --implementation cp \
      --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_24_x86_64 \
      --platform manylinux_2_27_x86_64 --platform manylinux_2_28_x86_64 --no-deps \
      ase vesin vesin-torch torch-sim-atomistic==0.3.0 jsonargparse docstring-parser typeshed-client \
      tables numexpr blosc2 ndindex msgpack
    du -sh "$WHEELS"
    ;;
  run)
    DEPS=/tmp/mlip-gpu-deps
    python3 -m pip install --quiet --no-index --no-deps --target "$DEPS" "$WHEELS"/*.whl
    export PYTHONPATH="$PWD:$DEPS${PYTHONPATH:+:$PYTHONPATH}"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
    python3 -c "import torch, e3nn, lightning, ase, vesin, torch_sim, mlip; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'e3nn', e3nn.__version__, 'mlip', mlip.__version__)"
    OUT_FILE=${OUT:+$OUT/cuda_check.json}
    python3 -m benchmarks.cuda_check ${OUT_FILE:+--out "$OUT_FILE"} "${@:2}"
    ;;
  *)
    echo "usage: bash scripts/gpu_check.sh prepare | run [cuda_check options]" >&2
    exit 2
    ;;
esac
