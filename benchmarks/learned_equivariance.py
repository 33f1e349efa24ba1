"""Learned equivariance at an equal CPU budget: TransformerPotential with the TransIP-style symmetry
objective, the same transformer with rotation augmentation only, and EquivariantPotential.

    python -m benchmarks.learned_equivariance --train ../shared/data/rmd17/aspirin_train_01.npz \
        --test ../shared/data/rmd17/aspirin_test_01.npz --minutes 6 --tag aspirin
    python -m benchmarks.learned_equivariance --train ../shared/data/acac/train_300K.xyz \
        --test ../shared/data/acac/test_MD_300K.xyz ../shared/data/acac/test_MD_600K.xyz --minutes 4 --tag acac

Each variant trains for `--minutes` of wall time on the same shards (95/5 % split, batch 5,
loss E/atom MSE + 100 · F MSE, EMA 0.99, float32), then reports per test file: energy and
force MAE/RMSE; equivariance on 20 test structures over 32 random rotations (energy std and
range in meV, relative force error), also for the untrained transformer; inference time per
structure (energy + forces, batches of 16); training throughput (structures/s); and the wall
time each variant needed to first reach a validation force MAE (time to equal accuracy).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import RESULTS, lightning_max_time, best_time, write_result

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "learned": ["--model.model", "transformer_small", "--model.rotation_augmentation", "true"],
    "augmented": ["--model.model", "transformer_small", "--model.rotation_augmentation", "true"],
    "unconstrained": ["--model.model", "transformer_small"],
    "equivariant": ["--model.model", "equivariant_medium", "--model.lr", "0.01"],
}


def run(command: list[str]) -> None:
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)


def train(variant: str, shards: Path, work: Path, args: argparse.Namespace) -> Path:
    bin_ = Path(sys.executable).parent
    extra = list(VARIANTS[variant])
    if variant != "equivariant":
        extra += ["--model.lr", str(args.transformer_lr), "--model.model_options", json.dumps(args.transformer_options)]
    if variant == "learned":
        extra += ["--model.symmetry_weight", str(args.symmetry_weight), "--model.symmetry_level", args.symmetry_level,
                  "--model.symmetry_temperature", str(args.symmetry_temperature),
                  "--model.symmetry_stop_gradient", str(args.symmetry_stop_gradient).lower()]
    minutes = args.minutes
    run([str(bin_ / "mlip-train"), "--run_dir", str(work / variant), "--data.train", str(shards),
         "--data.val_fraction", "0.05", "--data.batch_size", "5", "--data.val_batch_size", "10",
         "--model.forces_weight", "100", "--model.energy_weight", "1", "--model.plateau_patience", "50",
         "--ema_decay", "0.99", "--seed_everything", "0", "--trainer.max_epochs", "100000", "--trainer.max_time",
         lightning_max_time(minutes), "--trainer.enable_progress_bar", "false",
         "--checkpoint_every_n_steps", "1000", *extra])
    return work / variant / "model.mlip"


def curve(run_dir: Path) -> list[list[float]]:
    """[[elapsed s, epoch, val energy MAE meV/atom, val force MAE meV/Å], ...]."""
    rows = [r for r in csv.DictReader(open(run_dir / "metrics.csv")) if r.get("val_forces_mae") and r.get("elapsed_s")]
    return [[float(r["elapsed_s"]), int(float(r["epoch"])), float(r["val_energy_mae"]), float(r["val_forces_mae"])]
            for r in rows]


def measure(potential, tests: list[Path], rotations: int) -> dict:
    import torch

    from mlip.graph.batch import GraphBatch
    from mlip.io import iread
    from mlip.evaluate.cli import batches
    from mlip.evaluate.equivariance import equivariance_errors
    from mlip.evaluate.errors import evaluate_potential

    read_options = {"require": ("energy", "forces")}
    result: dict = {"test": {}}
    for test in tests:
        _, _, summary = evaluate_potential(potential, batches([str(test)], potential.cutoff, 16, read_options))
        result["test"][test.name] = summary
    from itertools import islice

    frames = list(islice(iread(str(tests[0])), 20))
    potential.eval()
    result["equivariance"] = equivariance_errors(potential, frames, rotations=rotations)
    batch = GraphBatch.from_frames(frames[:16], potential.cutoff).to(dtype=potential.reference.dtype)
    with torch.enable_grad():
        seconds = best_time(lambda: potential(batch, forces=True, create_graph=False))
    result["inference_ms_per_structure"] = 1000.0 * seconds / batch.num_graphs
    return result


def time_to_reach(points: list[list[float]], force_mae: float) -> float | None:
    return next((p[0] for p in points if p[3] <= force_mae), None)


def untrained(shards: Path, args: argparse.Namespace):
    import lightning.pytorch as pl

    from mlip.data.manifest import load_manifest
    from mlip.train.module import PotentialModule

    pl.seed_everything(0)
    module = PotentialModule(model="transformer_small", model_options=args.transformer_options)
    return module.build_from_manifest(load_manifest(shards))


def plot(results: dict, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for variant, entry in results["variants"].items():
        points = entry["valid_curve"]
        for axis, column, label in ((axes[0], 2, "val energy MAE (meV/atom)"), (axes[1], 3, "val force MAE (meV/Å)")):
            axis.plot([p[0] / 60 for p in points], [p[column] for p in points], label=variant)
            axis.set(xlabel="wall time (min, 2 CPU cores)", ylabel=label, yscale="log")
    axes[1].legend()
    fig.suptitle(f"learned equivariance vs augmentation vs equivariant ({results['tag']})")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--test", type=Path, nargs="+", required=True)
    parser.add_argument("--minutes", type=float, default=6.0, help="wall time per variant")
    parser.add_argument("--variants", nargs="+", default=["learned", "augmented", "equivariant"], choices=VARIANTS)
    parser.add_argument("--tag", default="aspirin")
    parser.add_argument("--transformer-lr", type=float, default=0.002)
    parser.add_argument("--transformer-options", type=json.loads, default={})
    parser.add_argument("--symmetry-weight", type=float, default=0.1)
    parser.add_argument("--symmetry-level", default="atom", choices=("structure", "atom"))
    parser.add_argument("--symmetry-temperature", type=float, default=0.1)
    parser.add_argument("--symmetry-stop-gradient", action="store_true",
                        help="embed the rotated copy without gradient (cheaper objective)")
    parser.add_argument("--rotations", type=int, default=32)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="mlip_learned_eq_"))
    shards = work / "shards"
    run([str(Path(sys.executable).parent / "mlip-preprocess"), str(args.train), "--cutoff", "5.0", "--out", str(shards),
         "--overwrite", "--quiet"])

    import mlip.export
    from mlip.data.manifest import load_manifest

    results: dict = {"tag": args.tag, "minutes": args.minutes, "options": {k: str(v) for k, v in vars(args).items()},
                     "variants": {}}
    results["untrained_transformer"] = measure(untrained(shards, args), args.test, args.rotations)["equivariance"]
    for variant in args.variants:
        model = train(variant, shards, work, args)
        entry = measure(mlip.export.load(model), args.test, args.rotations)
        entry["valid_curve"] = curve(work / variant)
        entry["epochs"] = entry["valid_curve"][-1][1] + 1
        train_size = round(0.95 * load_manifest(shards)["n_structures"])
        entry["train_structures_per_s"] = entry["epochs"] * train_size / entry["valid_curve"][-1][0]
        results["variants"][variant] = entry
        first = next(iter(entry["test"].values()))
        print(f"{variant}: E MAE {first['energy_mae']:.1f} meV, F MAE {first['forces_mae']:.1f} meV/Å, "
              f"equivariance {entry['equivariance']}", flush=True)
    # Time to equal accuracy: the best validation force MAE every variant reached.
    reachable = max(min(p[3] for p in e["valid_curve"]) for e in results["variants"].values())
    results["time_to_force_mae"] = {"force_mae_meV_per_A": reachable, "seconds": {
        v: time_to_reach(e["valid_curve"], reachable) for v, e in results["variants"].items()}}
    png = plot(results, RESULTS / f"learned_equivariance_{args.tag}.png")
    print(f"plot: {png}")
    write_result(f"learned_equivariance_{args.tag}", results)


if __name__ == "__main__":
    main()
