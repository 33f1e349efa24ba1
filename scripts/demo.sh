#!/usr/bin/env bash
# Set up .venv (first run only) and run the main job on the shipped data, all on CPU:
#   1. preprocess rMD17 aspirin (200 frames) into HDF5 graph shards and plot the data,
#   2. train a small equivariant potential for ~3 minutes (configs/aspirin_demo.yaml),
#   3. evaluate it on 100 held-out aspirin frames (errors and parity plots),
#   4. relax 3 aspirin conformations and run 1 ps of NVE molecular dynamics with the model.
# Outputs go to demo_out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
OUT=demo_out
.venv/bin/mlip-preprocess data/rmd17_aspirin_train200.npz --cutoff 5.0 --out "$OUT/aspirin" \
    --require energy forces --overwrite
.venv/bin/python -m mlip.data.inspect "$OUT/aspirin" --plot "$OUT/aspirin_data.png"
rm -rf "$OUT/aspirin_run"
.venv/bin/mlip-train --config configs/aspirin_demo.yaml --trainer.enable_model_summary false
.venv/bin/mlip-eval "$OUT/aspirin_run/model.mlip" data/rmd17_aspirin_test100.npz --out "$OUT/aspirin_eval"
.venv/bin/python -c "import mlip.io, ase.io; ase.io.write('$OUT/three_aspirins.xyz', [f.to_atoms() for f in mlip.io.read('data/rmd17_aspirin_test100.npz')[:3]])"
rm -rf "$OUT/aspirin_relax"
.venv/bin/mlip-relax "$OUT/aspirin_run/model.mlip" "$OUT/three_aspirins.xyz" --out "$OUT/aspirin_relax" --fmax 0.05 --max-steps 300
.venv/bin/mlip-md "$OUT/aspirin_run/model.mlip" data/rmd17_aspirin_test100.npz --out "$OUT/aspirin_md" \
    --ensemble nve --steps 2000 --timestep 0.5 --interval 20
echo "demo done: data plot $OUT/aspirin_data.png; run folder $OUT/aspirin_run (learning_curves.png, parity_val.png, model.mlip); test errors $OUT/aspirin_eval; relaxed $OUT/aspirin_relax; MD $OUT/aspirin_md"
