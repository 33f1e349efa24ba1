"""Loader throughput: GraphBatch batches per second from shards, through the Lightning DataModule.

    python -m benchmarks.loader_throughput [--aspirin PATH] [--batch-sizes 5 32] [--workers 0 2]

Systems: rMD17 aspirin (default: the shipped subset) and 64-atom rattled silicon cells, cutoff 5 Å.
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
from mlip.data import ShardDataModule, preprocess

DATA = Path(__file__).resolve().parents[1] / "data"


def silicon64(directory: Path, n_frames: int = 1000) -> Path:
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(n_frames):
        atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)
        atoms.positions += 0.1 * rng.standard_normal(atoms.positions.shape)
        frames.append(atoms)
    path = directory / "si64.xyz"
    ase.io.write(path, frames, format="extxyz")
    return path


def batches_per_second(shards: Path, batch_size: int, workers: int, epochs: int = 2) -> tuple[float, int]:
    module = ShardDataModule(shards, val_fraction=0.05, batch_size=batch_size, num_workers=workers)
    loader = module.train_dataloader()
    for batch in loader:  # warm-up epoch: starts workers, loads shards
        pass
    count, start = 0, time.perf_counter()
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch + 1)
        for batch in loader:
            count += 1
    return count / (time.perf_counter() - start), batch.receivers.numel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aspirin", default=str(DATA / "rmd17_aspirin_train200.npz"))
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[5, 32])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        inputs = {"aspirin": Path(args.aspirin), "si64": silicon64(tmp)}
        for name, source in inputs.items():
            shards = tmp / name
            preprocess([source], shards, cutoff=5.0, shard_size=500, progress=False)
            for batch_size in args.batch_sizes:
                for workers in args.workers:
                    rate, edges = batches_per_second(shards, batch_size, workers)
                    rows.append({"system": name, "batch_size": batch_size, "num_workers": workers,
                                 "batches_per_s": rate, "structures_per_s": rate * batch_size,
                                 "edges_per_batch": edges})
                    print(f"{name:>8} batch {batch_size:3d} workers {workers}: {rate:8.1f} batches/s "
                          f"({rate * batch_size:8.0f} structures/s)")
    write_result("loader_throughput", rows, args.out)


if __name__ == "__main__":
    main()
