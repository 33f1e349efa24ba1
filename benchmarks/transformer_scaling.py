"""Where does learned equivariance pay? The transformer's symmetry modes against training-set size.

    python -m benchmarks.transformer_scaling --sizes 1000 2000 4000 8000 --minutes 4
    python -m benchmarks.transformer_scaling --sizes 8000 --epochs 3 --tag equal_epochs

The eight rMD17 molecules (aspirin, benzene, ethanol, malonaldehyde, naphthalene, salicylic acid,
toluene, uracil; H C N O) are trained jointly: size/8 frames of each train_01 set (seeded), so
8,000 is all of them. Validation: 6 frames per molecule, test: `--test-per-molecule` frames per
molecule, both from the test_01 sets and disjoint. Every (size, mode) trains with the same recipe
(batch 5, EMA 0.99, loss E/atom MSE + 100·F MSE, float32, 5 Å graphs) for `--minutes` of wall time
(or `--epochs`), two jobs at a time, each pinned to its own core with one thread. Modes:

- augmented: `transformer_small` (neighbour attention) trained on a randomly rotated copy of
  every structure each step;
- objective_atom / objective_structure: the same plus the embedding-space symmetry objective
  (weight 0.1) on per-atom or pooled structure embeddings;
- frames: the same transformer under frame averaging (O(3) principal-axis frames, one random frame
  per structure and step in training, all 8 at evaluation): exactly invariant;
- equivariant: `equivariant_medium`;
- augmented_molecule / objective_structure_molecule / frames_molecule (not in the default list):
  the same modes on the TransIP-faithful backbone (molecule attention: rotary 3-D encodings of
  centred positions, all atoms, no cutoff).

Reported per size and mode: test energy MAE (and offset removed) and force MAE/RMSE over all
molecules and per molecule, energy spread over 32 rotations and force-equivariance error on 16
test structures (two per molecule), epochs, training structures/s, CPU time, inference µs per
atom-step (one structure per call, one thread) and the validation curves (one PNG per size).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.accuracy_front import (DATA, KEYS, errors, mlip_curve, mlip_predictions, read_frames, run_jobs,
                                       write_xyz)
from benchmarks.common import RESULTS, lightning_max_time, write_result

MOLECULES = ["aspirin", "benzene", "ethanol", "malonaldehyde", "naphthalene", "salicylic", "toluene", "uracil"]
TRANSFORMER = ["--model.model", "transformer_small"]
AUGMENTED = [*TRANSFORMER, "--model.rotation_augmentation", "true"]
OBJECTIVE = [*AUGMENTED, "--model.symmetry_weight", "0.1", "--model.symmetry_level"]
NEIGHBOR, MOLECULE = {"attention": "neighbor"}, {"attention": "molecule"}
FRAMES = {"frames": "O3", "frame_sampling": "random"}
MODES = {  # mode: (mlip-train options, network options)
    "augmented": (AUGMENTED, NEIGHBOR),
    "objective_atom": ([*OBJECTIVE, "atom"], NEIGHBOR),
    "objective_structure": ([*OBJECTIVE, "structure"], NEIGHBOR),
    "frames": (TRANSFORMER, {**NEIGHBOR, **FRAMES}),
    "equivariant": (["--model.model", "equivariant_medium"], {}),
    # the TransIP-faithful backbone: molecule attention with rotary 3-D encodings
    "augmented_molecule": (AUGMENTED, MOLECULE),
    "objective_structure_molecule": ([*OBJECTIVE, "structure"], MOLECULE),
    "frames_molecule": (TRANSFORMER, {**MOLECULE, **FRAMES}),
}
DEFAULT_MODES = ["augmented", "objective_atom", "objective_structure", "frames", "equivariant"]
LEARNING_RATE = {"equivariant": 0.01}  # the transformer's: --transformer-lr


def prepare(work: Path, sizes: list[int], n_valid: int, n_test: int, seed: int) -> dict:
    """Training files per size (nested: a smaller set is a prefix of a larger one), validation and test files."""
    rng = np.random.default_rng(seed)
    train, valid, test = {size: [] for size in sizes}, [], []
    for name in MOLECULES:
        frames = read_frames(DATA / "rmd17" / f"{name}_train_01.npz")
        order = rng.permutation(len(frames))
        for size in sizes:
            train[size] += [frames[i] for i in order[: size // len(MOLECULES)]]
        held_out = read_frames(DATA / "rmd17" / f"{name}_test_01.npz")
        order = rng.permutation(len(held_out))
        test += [held_out[i] for i in order[:n_test]]
        valid += [held_out[i] for i in order[n_test:n_test + n_valid]]
    files = {size: write_xyz(frames, work / f"train_{size}.xyz") for size, frames in train.items()}
    return {"train": files, "valid": write_xyz(valid, work / "valid.xyz"), "test": write_xyz(test, work / "test.xyz"),
            "n_valid": len(valid), "n_test": len(test)}


def command(mode: str, train: Path, valid: Path, run: Path, args: argparse.Namespace) -> list[str]:
    import sys

    extra, network = MODES[mode]
    network = {**network, **(args.transformer_options if mode != "equivariant" else {})}
    budget = (["--trainer.max_epochs", str(args.epochs)] if args.epochs else
              ["--trainer.max_epochs", "100000", "--trainer.max_time", lightning_max_time(args.minutes)])
    return [str(Path(sys.executable).parent / "mlip-train"), "--run_dir", str(run), "--data.train", str(train),
            "--data.val", str(valid), "--data.cutoff", "5.0", "--data.read_options", json.dumps(KEYS),
            "--data.batch_size", "5", "--data.val_batch_size", "10", "--model.lr",
            str(LEARNING_RATE.get(mode, args.transformer_lr)), "--model.forces_weight", "100",
            "--model.energy_weight", "1", "--model.plateau_patience", "50", "--ema_decay", "0.99",
            "--seed_everything", "0", *budget, "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", "--checkpoint_every_n_steps", "1000",
            "--model.model_options", json.dumps(network), *extra]


def trained_structures(run: Path, batch_size: int = 5) -> int:
    """Structures seen in training: the last optimiser step of metrics.csv times the batch size."""
    import csv

    steps = [int(r["step"]) for r in csv.DictReader(open(run / "metrics.csv")) if r.get("step")]
    return (max(steps) + 1) * batch_size if steps else 0


def evaluate(model: Path, test: Path) -> dict:
    """Test errors (all molecules and per molecule), equivariance and inference cost of one model."""
    import ase.io

    import mlip.export
    from mlip.evaluate.equivariance import equivariance_errors
    from mlip.io import Frame

    reference = ase.io.read(test, ":")
    energies, forces, _, per_atom = mlip_predictions(model, test, False)
    result = {"all": errors(reference, energies, forces, None), "us_per_atom_step": per_atom, "per_molecule": {}}
    formulas = [a.get_chemical_formula() for a in reference]
    for formula in dict.fromkeys(formulas):
        rows = [i for i, f in enumerate(formulas) if f == formula]
        result["per_molecule"][formula] = errors([reference[i] for i in rows], energies[rows],
                                                 [forces[i] for i in rows], None)
    picked = [next(i for i, f in enumerate(formulas) if f == formula) + k
              for formula in dict.fromkeys(formulas) for k in (0, 1)]
    frames = [Frame(numbers=reference[i].numbers, positions=reference[i].positions, cell=np.zeros((3, 3)), pbc=False)
              for i in picked]
    result["equivariance"] = equivariance_errors(mlip.export.load(model).eval(), frames, rotations=32)
    return result


def plot(rows: list[dict], size: int, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for row in rows:
        points = row["valid_curve"]
        for axis, column, label in ((axes[0], 2, "validation energy MAE (meV/atom)"),
                                    (axes[1], 3, "validation force MAE (meV/Å)")):
            axis.plot([p[0] / 60 for p in points], [p[column] for p in points], label=row["mode"])
            axis.set(xlabel="wall time (min, one core)", ylabel=label, yscale="log")
    axes[1].legend()
    fig.suptitle(f"rMD17, 8 molecules jointly: {size} training frames")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def table(rows: list[dict]) -> str:
    lines = ["| size | mode | epochs | train structures/s | E MAE (meV) | E MAE offset removed | F MAE (meV/Å) "
             "| E spread over rotations std (meV) | force equivariance error | µs/atom-step | CPU s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t, q = r["test"]["all"], r["test"]["equivariance"]
        lines.append(f"| {r['size']} | {r['mode']} | {r['epochs']} | {r['train_structures_per_s']:.0f} | "
                     f"{t['energy_mae_meV']:.1f} | {t['energy_mae_offset_removed_meV']:.1f} | {t['force_mae_meV_A']:.1f} | "
                     f"{q['energy_std_mev']:.3g} | {q['force_relative_error']:.2g} | {r['test']['us_per_atom_step']:.0f} | "
                     f"{r['cpu_s']:.0f} |")
    return "\n".join(lines)


def summarise(rows: list[dict]) -> dict:
    """Per size: every mode's force MAE over augmentation's, the wall time each mode needed to reach the
    equivariant model's final validation force MAE (None: never within the budget), and every mode's
    validation force MAE after the number of epochs the slowest mode completed (equal epochs)."""
    summary = {}
    for size in sorted({r["size"] for r in rows}):
        group = {r["mode"]: r for r in rows if r["size"] == size}
        entry: dict = {}
        if "augmented" in group:
            base = group["augmented"]["test"]["all"]["force_mae_meV_A"]
            entry["force_mae_over_augmented"] = {m: r["test"]["all"]["force_mae_meV_A"] / base for m, r in group.items()}
        if "equivariant" in group and group["equivariant"]["valid_curve"]:
            target = group["equivariant"]["valid_curve"][-1][3]
            entry["seconds_to_equivariant_final_val_force"] = {
                m: next((p[0] for p in r["valid_curve"] if p[3] <= target), None) for m, r in group.items()}
        common = min((r["valid_curve"][-1][1] for r in group.values() if r["valid_curve"]), default=None)
        if common is not None:  # equal epochs, read off the curves: validation force MAE after the same epochs
            entry["equal_epochs"] = {"epochs": common + 1, "val_force_mae": {
                m: next(p[3] for p in r["valid_curve"] if p[1] == common) for m, r in group.items() if r["valid_curve"]}}
        summary[str(size)] = entry
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 4000, 8000])
    parser.add_argument("--modes", nargs="+", default=DEFAULT_MODES, choices=list(MODES))
    parser.add_argument("--minutes", type=float, default=4.0, help="wall time per model after start-up")
    parser.add_argument("--epochs", type=int, help="train every model for this many epochs instead (equal epochs)")
    parser.add_argument("--transformer-lr", type=float, default=0.002)
    parser.add_argument("--transformer-options", type=json.loads, default={})
    parser.add_argument("--test-per-molecule", type=int, default=150)
    parser.add_argument("--valid-per-molecule", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="", help="suffix of the result name")
    parser.add_argument("--work", type=Path)
    parser.add_argument("--summarise", type=Path, metavar="RESULT_JSON", help="only print the tables of a result file")
    args = parser.parse_args()
    if args.summarise:
        saved = json.loads(args.summarise.read_text())["results"]
        print(table(saved["rows"]))
        print(json.dumps(summarise(saved["rows"]), indent=1))
        return
    if any(size % len(MOLECULES) or not 0 < size <= 8000 for size in args.sizes):
        parser.error("sizes must be multiples of 8 between 8 and 8000")
    work = args.work or Path(tempfile.mkdtemp(prefix="mlip_scaling_"))
    work.mkdir(parents=True, exist_ok=True)
    data = prepare(work, args.sizes, args.valid_per_molecule, args.test_per_molecule, args.seed)
    jobs = [(f"{size}/{mode}", command(mode, data["train"][size], data["valid"], work / str(size) / mode, args),
             work / str(size) / mode) for size in args.sizes for mode in args.modes]
    cost = run_jobs(jobs)
    rows = []
    for name, _, folder in jobs:
        size, mode = name.split("/")
        curve = mlip_curve(folder)
        epochs = curve[-1][1] + 1 if curve else 0
        row = {"size": int(size), "mode": mode, **cost[name], "valid_curve": curve, "epochs": epochs,
               "train_structures_per_s": trained_structures(folder) / curve[-1][0] if curve else 0.0,
               "test": evaluate(folder / "model.mlip", data["test"])}
        rows.append(row)
        print(f"{name}: F MAE {row['test']['all']['force_mae_meV_A']:.1f} meV/Å, "
              f"equivariance {row['test']['equivariance']['force_relative_error']:.2g}", flush=True)
    result_name = "transformer_scaling" + (f"_{args.tag}" if args.tag else "")
    plots = [str(plot([r for r in rows if r["size"] == size], size, RESULTS / f"{result_name}_{size}.png"))
             for size in args.sizes]
    write_result(result_name, {"sizes": args.sizes, "modes": args.modes, "minutes": None if args.epochs else args.minutes,
                               "epochs": args.epochs, "n_valid": data["n_valid"], "n_test": data["n_test"],
                               "options": {k: str(v) for k, v in vars(args).items()},
                               "commands": {j[0]: j[1] for j in jobs}, "rows": rows, "plots": plots,
                               "summary": summarise(rows)})
    print(table(rows))
    print(json.dumps(summarise(rows), indent=1))


if __name__ == "__main__":
    main()
