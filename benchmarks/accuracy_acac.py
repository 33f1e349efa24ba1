"""Acetylacetone: train on 300 K MD, test at 300 K and at 600 K (extrapolation to higher temperature).

    python -m benchmarks.accuracy_acac --data ../shared/data/acac --minutes 10

Trains EquivariantPotential (`--model`, default equivariant_medium) on `train_300K.xyz`
(95/5 % train/validation split) for a fixed wall time, then reports energy RMSE (meV per
structure and per atom) and force RMSE (meV/Å) on `test_MD_300K.xyz` and `test_MD_600K.xyz`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import lightning_max_time, write_result

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with train_300K.xyz, test_MD_*.xyz")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--model", default="equivariant_medium")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="mlip_acac_"))
    bin_ = Path(sys.executable).parent
    subprocess.run([str(bin_ / "mlip-train"), "--run_dir", str(work / "run"),
                    "--data.train", str(args.data / "train_300K.xyz"), "--data.val_fraction", "0.05",
                    "--data.batch_size", "5", "--data.cutoff", "5.0", "--model.model", args.model,
                    "--model.dtype", args.dtype, "--model.lr", "0.01", "--model.forces_weight", "100",
                    "--model.plateau_patience", "50", "--trainer.max_epochs", "100000",
                    "--trainer.max_time", lightning_max_time(args.minutes), "--trainer.enable_progress_bar",
                    "false", "--checkpoint_every_n_steps", "1000"], check=True, cwd=ROOT)
    rows = {}
    for temperature in ("300K", "600K"):
        out = work / f"eval_{temperature}"
        subprocess.run([str(bin_ / "mlip-eval"), str(work / "run" / "model.mlip"),
                        str(args.data / f"test_MD_{temperature}.xyz"), "--out", str(out)], check=True, cwd=ROOT)
        rows[temperature] = json.loads((out / "metrics.json").read_text())
        print(temperature, {k: round(v, 2) for k, v in rows[temperature].items() if k.endswith("rmse")})
    write_result("accuracy_acac", {"minutes": args.minutes, "model": args.model, "dtype": args.dtype,
                                   "test": rows, "run_dir": str(work / "run")})


if __name__ == "__main__":
    main()
