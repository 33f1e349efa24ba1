#!/usr/bin/env bash
# Set up .venv (first run only) and run the main job on the shipped data:
# preprocess rMD17 aspirin and acetylacetone into HDF5 graph shards, then inspect them
# (statistics, one training batch, and a PNG of the data). Outputs go to demo_out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
OUT="${1:-demo_out}"
.venv/bin/mlip-preprocess data/rmd17_aspirin_train200.npz --cutoff 5.0 --out "$OUT/aspirin" \
    --require energy forces --overwrite
.venv/bin/mlip-preprocess data/acac_train_300K_100.xyz --cutoff 5.0 --out "$OUT/acac" \
    --require energy forces --overwrite
.venv/bin/python examples/inspect_shards.py "$OUT/aspirin" --plot "$OUT/aspirin_data.png"
