#!/usr/bin/env bash
# The accuracy front on every dataset of issue 12: equivariant_medium against MACE, 12 minutes each
# (one pinned core and one thread per package). The crystal (examples/elastic_constants.py) and MD
# (benchmarks.md_stability) checks run on the trained models afterwards, as benchmarks/README.md shows.
#   bash benchmarks/front_all.sh [MINUTES] [WORK] [SUFFIX]      (about 15 minutes per dataset on 2 cores)
# SUFFIX (e.g. _1206) names the results accuracy_front_DATASET_SUFFIX.json, so that a dated rerun keeps the
# results already committed under the plain dataset name. A name that already has a result is refused (the harness's
# --overwrite replaces it): pick a new SUFFIX for a rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-12}
WORK=${2:-front_work}
SUFFIX=${3:-}
MACE=.bench/mace/bin/python
[ -x "$MACE" ] || bash ../shared/bench/mace/setup.sh .bench/mace
for DATASET in ${DATASETS:-aspirin ethanol acac mlearn_si mlearn_mo si_mo2023}; do
    .venv/bin/python -m benchmarks.accuracy_front --dataset "$DATASET" --minutes "$MINUTES" \
        --variants equivariant_medium --mace-python "$MACE" --work "$WORK/$DATASET" \
        --name "$DATASET$SUFFIX"
done
