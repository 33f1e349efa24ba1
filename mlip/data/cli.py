"""`mlip-preprocess INPUT... --out DIR [--cutoff R]`: structures to neighbour-graph shards."""

from __future__ import annotations

import argparse
import sys

from mlip.data.manifest import describe_labels
from mlip.data.preprocess import DEFAULT_CUTOFF, PreprocessConflictError, preprocess
from mlip.folder_lock import FolderInUseError
from mlip.io import InvalidStructureError, ReadOptions
from mlip.version_flag import add_version_flag


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlip-preprocess",
        description="Read structures (extxyz and all ASE formats, MD17 npz, VASP OUTCAR/vasprun.xml, "
        "CIF/POSCAR, MPtrj JSON), build periodic neighbour graphs and write HDF5 shards plus manifest.json.",
    )
    add_version_flag(parser)
    parser.add_argument("inputs", nargs="+", help="files or folders of files")
    parser.add_argument("--cutoff", type=float, default=DEFAULT_CUTOFF,
                        help=f"neighbour cutoff radius, Å (default {DEFAULT_CUTOFF:g}, as mlip-train's and MACE's)")
    parser.add_argument("--out", required=True, help="output folder for shards and manifest.json")
    parser.add_argument("--format", default=None, help="force an input format (default: from file names)")
    parser.add_argument("--energy-key", default="energy", help="energy label name in extxyz/ASE files (e.g. REF_energy)")
    parser.add_argument("--forces-key", default="forces", help="forces label name")
    parser.add_argument("--stress-key", default="stress", help="stress label name")
    parser.add_argument("--virial-key", default="virial", help="virial label name (converted to stress)")
    parser.add_argument("--require", nargs="*", default=[], choices=["energy", "forces", "stress"],
                        help="labels every structure must carry")
    parser.add_argument("--energy-unit", default=None, help="energy unit of npz inputs when not the default")
    parser.add_argument("--shard-size", type=int, default=2000, help="structures per shard (default 2000)")
    parser.add_argument("--shard-atoms", type=int, default=250_000, help="atoms per shard at most (default 250000)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    parser.add_argument("--min-distance", type=float, default=0.1,
                        help="refuse structures with atoms closer than this, Å (default 0.1; 0 disables)")
    parser.add_argument("--overwrite", action="store_true", help="replace shards from an earlier, different run")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        manifest = preprocess(
            args.inputs,
            args.out,
            cutoff=args.cutoff,
            shard_size=args.shard_size,
            shard_atoms=args.shard_atoms,
            workers=args.workers,
            min_distance=args.min_distance or None,
            overwrite=args.overwrite,
            progress=not args.quiet,
            read_options=ReadOptions(format=args.format, energy_key=args.energy_key, forces_key=args.forces_key,
                                     stress_key=args.stress_key, virial_key=args.virial_key,
                                     require=tuple(args.require), energy_unit=args.energy_unit),
        )
    except (InvalidStructureError, PreprocessConflictError, FolderInUseError, ValueError, OSError) as exc:
        print(f"mlip-preprocess: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mlip-preprocess: interrupted; finished shards are kept, rerun the same command to resume", file=sys.stderr)
        return 130
    seconds = manifest["produced_by"]["seconds"]
    print(
        f"wrote {len(manifest['shards'])} shard(s) with {manifest['n_structures']} structures, "
        f"{manifest['n_atoms']} atoms, {manifest['n_edges']} edges to {args.out} in {seconds:.1f} s "
        f"({manifest['n_structures'] / max(seconds, 1e-9):.0f} structures/s)\n"
        f"elements {' '.join(manifest['elements'])}; mean neighbours {manifest['mean_neighbors']:.1f}; "
        f"force RMS {manifest['force_rms']:.3f} eV/Å\n"
        f"labelled: {describe_labels(manifest['labels'])}"
    )
    if not any(manifest["labels"].values()):  # nothing to train on: most often labels under other names
        print(f"mlip-preprocess: warning: no structure carries an energy, force or stress label under the names "
              f"'{args.energy_key}', '{args.forces_key}', '{args.stress_key}': these shards cannot train a model. "
              f"Give the names your files use (MACE's: --energy-key REF_energy --forces-key REF_forces "
              f"--stress-key REF_stress) and add --overwrite", file=sys.stderr)
        return 0
    print(f"next: look at the data with  python -m mlip.data.inspect {args.out} --plot {args.out}/data.png\n"
          f"      and train with  mlip-train --data.train {args.out} --model.model equivariant_medium --run_dir RUN")
    return 0


if __name__ == "__main__":
    sys.exit(main())
