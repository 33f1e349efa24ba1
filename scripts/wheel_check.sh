#!/usr/bin/env bash
# Packaging check (CI): build mlip's wheel, install it into a fresh virtual environment (torch
# pinned first, as in setup.sh) and, from a folder outside the repository, preprocess the shipped
# aspirin frames, train a few steps, evaluate, relax and run MD. Nothing from the checkout is
# importable there: only the wheel and the data files copied in.
#   bash scripts/wheel_check.sh           (about 2-4 minutes, most of it pip)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
TORCH_SPEC="${MLIP_TORCH_SPEC:-torch==2.13.0}"
echo "[wheel] building the wheel"
python3 -m venv "$WORK/venv"
PIP=("$WORK/venv/bin/pip" install -q --disable-pip-version-check)
"${PIP[@]}" "$TORCH_SPEC"
"$WORK/venv/bin/pip" wheel -q --disable-pip-version-check --no-deps "$REPO" -w "$WORK/dist"
WHEEL="$(ls "$WORK"/dist/mlip-*.whl)"
echo "[wheel] installing $(basename "$WHEEL") into a fresh environment"
"${PIP[@]}" "$WHEEL"
mkdir "$WORK/run" && cp "$REPO"/data/rmd17_aspirin_train200.npz "$REPO"/data/rmd17_aspirin_test100.npz "$WORK/run"
cd "$WORK/run"
BIN="$WORK/venv/bin"
"$BIN/mlip-train" --version
"$BIN/mlip-preprocess" rmd17_aspirin_train200.npz --cutoff 5.0 --out shards --require energy forces --quiet
"$BIN/mlip-train" --run_dir run --data.train shards --data.val_fraction 0.1 --data.batch_size 5 --data.cutoff 5.0 \
    --model.model equivariant_small --trainer.max_steps 20 --trainer.enable_progress_bar false
"$BIN/mlip-eval" run/model.mlip rmd17_aspirin_test100.npz --out eval
"$BIN/python" -c "import ase.io, mlip.io; ase.io.write('two.xyz', [f.to_atoms() for f in mlip.io.read('rmd17_aspirin_test100.npz')[:2]])"
"$BIN/mlip-relax" run/model.mlip two.xyz --out relax --fmax 0.1 --max-steps 50
"$BIN/mlip-md" run/model.mlip rmd17_aspirin_test100.npz --out md --ensemble nve --steps 50 --timestep 0.5 --interval 10
"$BIN/python" - <<'PY'
import mlip
from pathlib import Path
assert not Path(mlip.__file__).is_relative_to(Path.cwd()), mlip.__file__
potential = mlip.load("run/model.mlip")
print(f"[wheel] mlip {mlip.__version__} from {Path(mlip.__file__).parent}: trained, evaluated, relaxed and ran MD "
      f"({sum(p.numel() for p in potential.parameters())} parameters)")
PY
