#!/usr/bin/env bash
# Set up .venv (first run only) and run the main job on the shipped data, all on CPU:
#   1. preprocess rMD17 aspirin (200 frames) into HDF5 graph shards and plot the data,
#   2. train a small equivariant potential for ~3 minutes (configs/aspirin_demo.yaml),
#   3. evaluate it on 100 held-out aspirin frames (errors and parity plots).
# Outputs go to demo_out/. Relaxation and MD join when the calculator lands (issue 5).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
OUT=demo_out
.venv/bin/mlip-preprocess data/rmd17_aspirin_train200.npz --cutoff 5.0 --out "$OUT/aspirin" \
    --require energy forces --overwrite
.venv/bin/python examples/inspect_shards.py "$OUT/aspirin" --plot "$OUT/aspirin_data.png"
rm -rf "$OUT/aspirin_run"
.venv/bin/mlip-train --config configs/aspirin_demo.yaml --trainer.enable_model_summary false
.venv/bin/mlip-eval "$OUT/aspirin_run/model.mlip" data/rmd17_aspirin_test100.npz --out "$OUT/aspirin_eval"
echo "demo done: data plot $OUT/aspirin_data.png; run folder $OUT/aspirin_run (learning_curves.png, parity_val.png, model.mlip); test errors $OUT/aspirin_eval"
