"""`mlip-eval MODEL DATA... [--out DIR]`: errors of a model file on labelled data, with parity plots."""

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
from mlip.io import InvalidStructureError, iread
from mlip.models.potential import UnknownElementError
from mlip.train.evaluate import evaluate_potential
from mlip.train.plots import parity
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
    parser.add_argument("data", nargs="+", help="labelled structure files or shard folders")
    parser.add_argument("--out", default=None, help="folder for metrics.json and parity.png (default: beside the model)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--stress", action="store_true", help="also evaluate stress")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--energy-key", default="energy")
    parser.add_argument("--forces-key", default="forces")
    parser.add_argument("--stress-key", default="stress")
    parser.add_argument("--equivariance", type=int, default=0, metavar="R",
                        help="also measure the energy spread and force-equivariance error over R random rotations "
                             "(of the first 20 structures of the first raw file); for models without built-in "
                             "rotation symmetry (architecture 'transformer')")
    args = parser.parse_args(argv)
    read_options = {"energy_key": args.energy_key, "forces_key": args.forces_key, "stress_key": args.stress_key,
                    "require": ("energy", "forces")}
    try:
        potential = load(args.model, device=args.device)
        labels, predictions, summary = evaluate_potential(
            potential, batches(args.data, potential.cutoff, args.batch_size, read_options), stress=args.stress,
            device=args.device)
        if args.equivariance:
            summary["equivariance"] = _equivariance(potential, args, read_options)
    except (ModelFileError, InvalidStructureError, UnknownElementError, ValueError, FileNotFoundError) as exc:
        print(f"mlip-eval: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path(args.model).parent / "eval"
    out.mkdir(parents=True, exist_ok=True)
    print(f"{'quantity':<18}{'MAE':>12}{'RMSE':>12}  unit")
    for name, unit in UNITS.items():
        if f"{name}_mae" in summary:
            print(f"{name:<18}{summary[f'{name}_mae']:>12.3f}{summary[f'{name}_rmse']:>12.3f}  {unit}")
    if "equivariance" in summary:
        e = summary["equivariance"]
        print(f"equivariance over {e['rotations']} rotations: energy std {e['energy_std_mev']:.3f} meV, "
              f"range {e['energy_range_mev']:.3f} meV, force relative error {e['force_relative_error']:.2e}")
    (out / "metrics.json").write_text(json.dumps({"model": args.model, "data": args.data, "units": UNITS,
                                                  **summary}, indent=2) + "\n")
    plot = parity(labels, predictions, out / "parity.png", f"{Path(args.model).name} on {', '.join(args.data)}")
    print(f"metrics: {out / 'metrics.json'}\nparity plot: {plot}")
    return 0


def _equivariance(potential, args: argparse.Namespace, read_options: dict) -> dict[str, float]:
    from itertools import islice

    from mlip.train.equivariance import equivariance_errors

    raw = [item for item in args.data if not (Path(item) / "manifest.json").exists()]
    if not raw:
        raise ValueError("--equivariance needs a raw structure file among DATA (shard folders hold graphs, not frames)")
    frames = list(islice(iread(raw[0], **read_options), 20))
    return equivariance_errors(potential, frames, rotations=args.equivariance)


if __name__ == "__main__":
    sys.exit(main())
