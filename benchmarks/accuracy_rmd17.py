"""rMD17 accuracy at an equal CPU budget: mlip's EquivariantPotential against MACE, same machine.

    python -m benchmarks.accuracy_rmd17 --train ../shared/data/rmd17/aspirin_train_01.npz \
        --test ../shared/data/rmd17/aspirin_test_01.npz --minutes 30 --mace-python .bench/mace/bin/python

Protocol (docs/BENCHMARKS.md): 950 training / 50 validation frames of train_01, tested on all
of test_01; batch 5, Adam(AMSGrad) lr 0.01, EMA 0.99, loss = E/atom MSE + 100 · F MSE, float32.
mlip trains for `--minutes` of wall time (Lightning max_time); MACE (its own venv, the
CPU-sized model) for as many epochs as fit in the same time at its measured speed. Writes
JSON with test errors of both and a PNG of validation error against wall time.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import RESULTS, lightning_max_time, write_result

ROOT = Path(__file__).resolve().parents[1]
MACE_SCRIPTS = ROOT.parent / "shared" / "bench" / "mace"
MACE_SECONDS_PER_EPOCH = 48.0  # measured here (2026-11-23): ~20 configurations/s on 950 frames, validation included


def run(command: list[str], **options) -> subprocess.CompletedProcess:
    print("$", " ".join(command), flush=True)
    return subprocess.run(command, check=True, cwd=ROOT, **options)


def train_mlip(train: Path, test: Path, minutes: float, work: Path, model: str, channels: int | None) -> dict:
    bin_ = Path(sys.executable).parent
    run([str(bin_ / "mlip-preprocess"), str(train), "--cutoff", "5.0", "--out", str(work / "shards"), "--overwrite",
         "--quiet"])
    options = {"channels": channels} if channels else {}
    run([str(bin_ / "mlip-train"), "--run_dir", str(work / "run"), "--data.train", str(work / "shards"),
         "--data.val_fraction", "0.05", "--data.batch_size", "5", "--data.val_batch_size", "10",
         "--model.model", model, "--model.model_options", json.dumps(options), "--model.lr", "0.01",
         "--model.forces_weight", "100", "--model.energy_weight", "1", "--model.plateau_patience", "50",
         "--ema_decay", "0.99", "--trainer.max_epochs", "100000", "--trainer.max_time",
         lightning_max_time(minutes), "--trainer.enable_progress_bar", "false",
         "--checkpoint_every_n_steps", "1000"])
    run([str(bin_ / "mlip-eval"), str(work / "run" / "model.mlip"), str(test), "--out", str(work / "eval")])
    metrics = json.loads((work / "eval" / "metrics.json").read_text())
    rows = [r for r in csv.DictReader(open(work / "run" / "metrics.csv")) if r.get("val_forces_mae")]
    n_atoms = 21
    curve = [[float(r["elapsed_s"]), int(float(r["epoch"])), float(r["val_energy_mae"]) * n_atoms,
              float(r["val_forces_mae"])] for r in rows if r.get("elapsed_s")]
    return {"package": "mlip", "model": model, "energy_mae_meV": metrics["energy_mae"],
            "forces_mae_meV_per_A": metrics["forces_mae"], "energy_rmse_meV": metrics["energy_rmse"],
            "forces_rmse_meV_per_A": metrics["forces_rmse"], "epochs": curve[-1][1] + 1 if curve else 0,
            "valid_curve": curve}


def train_mace(python: str, train: Path, test: Path, minutes: float, work: Path) -> dict:
    for name, path, window in (("train", train, ["0", "950"]), ("valid", train, ["950", "1000"]), ("test", test, [])):
        run([python, str(MACE_SCRIPTS / "to_xyz.py"), str(path), str(work / f"{name}.xyz"), *window])
    epochs = max(1, int(minutes * 60 / MACE_SECONDS_PER_EPOCH))
    run([python, str(MACE_SCRIPTS / "train.py"), str(work / "mace"), str(work / "train.xyz"), str(work / "valid.xyz"),
         str(epochs)])
    run([python, str(MACE_SCRIPTS / "errors.py"), str(work / "mace" / "mace.model"), str(work / "test.xyz"),
         str(work / "errors.json")])
    errors = json.loads((work / "errors.json").read_text())
    result = json.loads((work / "mace" / "result.json").read_text())
    return {"package": "mace", "epochs": epochs, "wall_s": result["wall_s"], "errors": errors,
            "valid_curve": result["valid_curve"]}


def plot(rows: list[dict], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for row in rows:
        curve = [c for c in row["valid_curve"] if c[1] >= 0]
        if not curve:
            continue
        t = [c[0] / 60 for c in curve]
        axes[0].plot(t, [c[2] for c in curve], marker="o", ms=2, label=row["package"])
        axes[1].plot(t, [c[3] for c in curve], marker="o", ms=2, label=row["package"])
    for ax, label in zip(axes, ("validation energy MAE (meV)", "validation force MAE (meV/Å)")):
        ax.set_xlabel("wall time (min), 2-core CPU")
        ax.set_ylabel(label)
        ax.set_yscale("log")
        ax.legend()
    fig.suptitle("rMD17 aspirin, 950 training frames, equal wall time")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--model", default="equivariant_medium")
    parser.add_argument("--channels", type=int, default=None)
    parser.add_argument("--mace-python", default=None)
    parser.add_argument("--work", type=Path, default=None, help="keep intermediate files here")
    parser.add_argument("--tag", default="", help="suffix of the result files (e.g. a model variant)")
    parser.add_argument("--compare", type=Path, default=None,
                        help="an earlier result JSON whose MACE row is reused instead of training MACE again")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="mlip_accuracy_"))
    rows = [train_mlip(args.train, args.test, args.minutes, work / "mlip", args.model, args.channels)]
    if args.mace_python:
        (work / "mace_side").mkdir(parents=True, exist_ok=True)
        rows.append(train_mace(args.mace_python, args.train, args.test, args.minutes, work / "mace_side"))
    elif args.compare:
        previous = json.loads(args.compare.read_text())["results"]["rows"]
        rows += [{**row, "reused_from": str(args.compare)} for row in previous if row["package"] == "mace"]
    name = "accuracy_rmd17_aspirin" + (f"_{args.tag}" if args.tag else "")
    png = plot(rows, RESULTS / f"{name}.png")
    write_result(name, {"minutes": args.minutes, "model_options": {"model": args.model, "channels": args.channels},
                        "rows": rows, "plot": str(png)})


if __name__ == "__main__":
    main()
