"""Preprocessing throughput (structures/s, edges/s) and disk bytes per edge.

    python -m benchmarks.preprocess_throughput [--aspirin PATH] [--workers 1 2] [--cutoff 5.0]

Systems: rMD17 aspirin (default: the shipped 200-frame subset; pass the full
`../shared/data/rmd17/aspirin_train_01.npz`), rattled periodic silicon cells of 4,096 atoms,
and 1,000 small silicon cells of 64 atoms at a 6 Å cutoff (MPtrj-like: ~31 atoms per
structure, MACE-MP's cutoff), written to extended XYZ so that reading is part of the
measured pipeline. The MPtrj extrapolation in benchmarks/README.md uses the last system.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import ase.io
import numpy as np
from ase.build import bulk

from benchmarks.common import write_result
from mlip.data import preprocess

DATA = Path(__file__).resolve().parents[1] / "data"


def silicon_file(directory: Path, n_frames: int, repeat: int = 8) -> Path:
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(n_frames):
        atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(repeat)
        atoms.positions += 0.1 * rng.standard_normal(atoms.positions.shape)
        frames.append(atoms)
    path = directory / f"si{len(frames[0])}.xyz"
    ase.io.write(path, frames, format="extxyz")
    return path


def measure(source: Path, out: Path, cutoff: float, workers: int, shard_size: int) -> dict:
    start = time.perf_counter()
    manifest = preprocess([source], out, cutoff=cutoff, workers=workers, shard_size=shard_size,
                          overwrite=True, progress=False)
    seconds = time.perf_counter() - start
    disk = sum(p.stat().st_size for p in out.glob("shard_*.h5"))
    row = {"input": source.name, "workers": workers, "cutoff": cutoff, "structures": manifest["n_structures"],
           "atoms": manifest["n_atoms"], "edges": manifest["n_edges"], "seconds": seconds,
           "structures_per_s": manifest["n_structures"] / seconds, "edges_per_s": manifest["n_edges"] / seconds,
           "disk_bytes": disk, "bytes_per_edge": disk / manifest["n_edges"], "bytes_per_atom": disk / manifest["n_atoms"],
           "mean_neighbors": manifest["mean_neighbors"]}
    print(f"{source.name:>28} workers={workers} {row['structures_per_s']:9.1f} struct/s "
          f"{row['edges_per_s']:11.3g} edges/s {row['bytes_per_edge']:6.2f} B/edge")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aspirin", default=str(DATA / "rmd17_aspirin_train200.npz"))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cutoff", type=float, default=5.0)
    parser.add_argument("--si-frames", type=int, default=24)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        silicon = silicon_file(tmp, args.si_frames)
        small = silicon_file(tmp, 1000, repeat=2)
        for workers in args.workers:
            rows.append(measure(Path(args.aspirin), tmp / "asp", args.cutoff, workers, shard_size=250))
            rows.append(measure(silicon, tmp / "si", args.cutoff, workers, shard_size=4))
            rows.append(measure(small, tmp / "si64", 6.0, workers, shard_size=250))
    write_result("preprocess_throughput", rows, args.out)


if __name__ == "__main__":
    main()
