"""`mlip-eval MODEL DATA... [--out DIR]`: errors of a model file on labelled data, parity plots and predictions."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Iterator

from mlip.data.dataset import ShardDataset
from mlip.export import ModelFileError, load
from mlip.graph.atomic_graph import build_graph
from mlip.graph.batch import GraphBatch
from mlip.io import InvalidStructureError, ReadOptions, iread
from mlip.models.potential import UnknownElementError
from mlip.evaluate.errors import evaluate_potential
from mlip.evaluate.plots import parity
from mlip.evaluate.predictions import PredictionWriter
from mlip.version_flag import add_version_flag

UNITS = {"energy": "meV/structure", "energy_per_atom": "meV/atom", "forces": "meV/Å", "stress": "meV/Å³"}


def batches(inputs: list[str], cutoff: float, batch_size: int, read_options: dict) -> Iterator[GraphBatch]:
    """Batches from shard folders (graphs must match the model's cutoff) or raw structure files."""
    graphs = []
    for item in inputs:
        if (Path(item) / "manifest.json").exists():
            dataset = ShardDataset(item)
            if abs(dataset.cutoff - cutoff) > 1e-9:
                raise ValueError(f"{item} was preprocessed with cutoff {dataset.cutoff} Å but the model uses {cutoff} Å; "
                                 f"pass the raw files instead or rerun mlip-preprocess --cutoff {cutoff}")
            source = (dataset[i] for i in range(len(dataset)))
        else:
            source = (build_graph(frame, cutoff) for frame in iread(item, **read_options))
        for graph in source:
            graphs.append(graph)
            if len(graphs) == batch_size:
                yield GraphBatch.collate(graphs)
                graphs = []
    if graphs:
        yield GraphBatch.collate(graphs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlip-eval", description=__doc__.splitlines()[0])
    add_version_flag(parser)
    parser.add_argument("model", help="model file written by mlip-train (model.mlip)")
    parser.add_argument("data", nargs="+", help="labelled structure files or shard folders; each is evaluated apart")
    parser.add_argument("--out", default=None,
                        help="output folder (default: eval/ beside the model); one subfolder per data file with "
                             "metrics.json, parity.png and predictions.xyz")
    parser.add_argument("--batch-size", type=int, default=16, help="structures per model call (default 16)")
    parser.add_argument("--stress", action="store_true", help="also predict and evaluate stress (periodic cells)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--energy-key", default="energy", help="energy label name in extxyz/ASE files (eV)")
    parser.add_argument("--forces-key", default="forces", help="forces label name (eV/Å); frames without forces are "
                                                               "evaluated on energies only")
    parser.add_argument("--stress-key", default=None, help="stress label name (eV/Å³; default 'stress'); naming it "
                                                            "implies --stress")
    parser.add_argument("--equivariance", type=int, default=0, metavar="R",
                        help="also measure the energy spread and force-equivariance error over R random rotations "
                             "(of the first 20 structures of the first raw file); for models without built-in "
                             "rotation symmetry (architecture 'transformer')")
    args = parser.parse_args(argv)
    args.stress = args.stress or args.stress_key is not None  # a stress label named is a stress label to evaluate
    read_options = ReadOptions(energy_key=args.energy_key, forces_key=args.forces_key,
                               stress_key=args.stress_key or "stress", require=("energy",)).as_kwargs()
    root = Path(args.out) if args.out else Path(args.model).parent / "eval"
    try:
        potential = load(args.model, device=args.device).requires_grad_(False)  # inference: frozen weights
        for item, out in zip(args.data, output_folders(args.data, root)):
            evaluate_one(potential, item, out, args, read_options)
        if args.equivariance:
            errors = _equivariance(potential, args, read_options)
            print(f"equivariance over {errors['rotations']} rotations: energy std {errors['energy_std_mev']:.3f} meV, "
                  f"range {errors['energy_range_mev']:.3f} meV, force relative error {errors['force_relative_error']:.2e}")
            (root / "equivariance.json").write_text(json.dumps(errors, indent=2) + "\n")
    except (ModelFileError, InvalidStructureError, UnknownElementError, ValueError, FileNotFoundError) as exc:
        print(f"mlip-eval: error: {exc}", file=sys.stderr)
        return 2
    return 0


def output_folders(items: list[str], root: Path) -> list[Path]:
    """One folder per data item under `root`, named after it (file stem or folder name; made unique)."""
    folders, seen = [], set()
    for item in items:
        name = Path(item).name if (Path(item) / "manifest.json").exists() else Path(item).stem
        candidate, k = name, 1
        while candidate in seen:
            k += 1
            candidate = f"{name}_{k}"
        seen.add(candidate)
        folders.append(root / candidate)
    return folders


def evaluate_one(potential, item: str, out: Path, args: argparse.Namespace, read_options: dict) -> dict:
    """Errors, parity plot and predictions of one data file or shard folder, written to `out`."""
    writer = PredictionWriter(out / "predictions.xyz")
    try:
        labels, predictions, summary = evaluate_potential(
            potential, batches([item], potential.cutoff, args.batch_size, read_options), stress=args.stress,
            device=args.device, on_batch=writer)
    finally:
        writer.close()
    print(f"\n{item}: {writer.count} structures")
    print(f"{'quantity':<18}{'MAE':>12}{'RMSE':>12}  unit")
    for name, unit in UNITS.items():
        if f"{name}_mae" in summary:
            print(f"{name:<18}{summary[f'{name}_mae']:>12.3f}{summary[f'{name}_rmse']:>12.3f}  {unit}")
    (out / "metrics.json").write_text(json.dumps({"model": args.model, "data": item, "structures": writer.count,
                                                  "units": UNITS, **summary}, indent=2) + "\n")
    plot = parity(labels, predictions, out / "parity.png", f"{Path(args.model).name} on {Path(item).name}")
    print(f"metrics: {out / 'metrics.json'}\nparity plot: {plot}\npredictions: {writer.path} (mlip_energy, mlip_forces"
          f"{', mlip_stress' if args.stress else ''} beside the reference labels)")
    return summary


def _equivariance(potential, args: argparse.Namespace, read_options: dict) -> dict[str, float]:
    from itertools import islice

    from mlip.evaluate.equivariance import equivariance_errors

    raw = [item for item in args.data if not (Path(item) / "manifest.json").exists()]
    if not raw:
        raise ValueError("--equivariance needs a raw structure file among DATA (shard folders hold graphs, not frames)")
    frames = list(islice(iread(raw[0], **read_options), 20))
    return equivariance_errors(potential, frames, rotations=args.equivariance)


if __name__ == "__main__":
    sys.exit(main())
