"""Eager training-step time of `equivariant_medium`: what sets the epochs a fixed budget buys.

    python -m benchmarks.train_step_speed --out benchmarks/results/train_step_speed.json
    python -m benchmarks.train_step_speed --against /path/to/other/checkout --rounds 3   # before/after

One step = energies, forces (create_graph) and, for crystals, stress of a batch; the loss
E² + F² (+ σ²) backward to the weights, as `mlip-train` does with a force loss. Batches: 5 rattled
aspirin molecules (21 atoms) and 5 rattled 64-atom diamond Si cells with stress, 5 Å, float32,
one torch thread by default (the accuracy front's setting). Each (checkout, batch) runs in a fresh
process; with `--against`, the other checkout's code (its `mlip` package on PYTHONPATH) runs the same
worker, rounds alternating between the two, and the ratio of the medians is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

BATCHES = ("aspirin", "Si64")
WORKER = Path(__file__).resolve()


def step_ms(batch_name: str, threads: int, steps: int) -> float:
    """Median wall time (ms) of `steps` training steps after 3 warm-up steps, in this process."""
    import time

    import numpy as np
    import torch

    from benchmarks.systems import aspirin, silicon
    from mlip.graph import GraphBatch
    from mlip.io import Frame
    from mlip.memory import keep_freed_memory
    from mlip.models import build_potential
    from mlip.models.presets import load_preset

    keep_freed_memory()  # as mlip-train does
    torch.set_num_threads(threads)
    atoms = aspirin() if batch_name == "aspirin" else silicon(64)
    periodic = bool(atoms.pbc.any())
    rng = np.random.default_rng(0)
    frames = [Frame(numbers=atoms.numbers, positions=atoms.positions + rng.normal(0.0, 0.05, (len(atoms), 3)),
                    cell=atoms.cell.array, pbc=atoms.pbc) for _ in range(5)]
    batch = GraphBatch.from_frames(frames, 5.0)
    torch.manual_seed(0)
    options = load_preset("equivariant_medium")
    options.update(avg_num_neighbors=20.0)
    potential = build_potential(elements=sorted(set(atoms.numbers.tolist())), cutoff=5.0, dtype=torch.float32,
                                **options).train()

    def step() -> float:
        start = time.perf_counter()
        out = potential(batch, forces=True, stress=periodic, create_graph=True)
        loss = out["energy"].square().sum() + out["forces"].square().sum()
        if periodic:
            loss = loss + out["stress"].square().sum()
        loss.backward()
        return time.perf_counter() - start

    for _ in range(3):
        step()
    return statistics.median(step() for _ in range(steps)) * 1e3


def run_worker(checkout: Path, batch_name: str, threads: int, steps: int) -> float:
    """step_ms in a fresh process with `checkout`'s mlip first on the path."""
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(checkout), str(WORKER.parent.parent)]),
                       OMP_NUM_THREADS=str(threads))
    result = subprocess.run([sys.executable, str(WORKER), "--worker", batch_name, "--threads", str(threads),
                             "--steps", str(steps)], env=environment, capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", nargs="+", default=list(BATCHES), choices=BATCHES)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per checkout")
    parser.add_argument("--against", type=Path, default=None, help="another checkout (e.g. a git worktree of the "
                        "commit before) whose mlip runs the same steps, alternating with this one")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.worker:
        print(step_ms(args.worker, args.threads, args.steps))
        return
    from benchmarks.common import write_result

    here = WORKER.parent.parent
    checkouts = {"this": here} | ({"against": args.against.resolve()} if args.against else {})
    rows = []
    for batch_name in args.batches:
        times: dict[str, list[float]] = {name: [] for name in checkouts}
        for round_ in range(args.rounds):
            order = list(checkouts.items()) if round_ % 2 == 0 else list(reversed(checkouts.items()))
            for name, checkout in order:
                times[name].append(run_worker(checkout, batch_name, args.threads, args.steps))
        row = {"batch": batch_name, "threads": args.threads, "steps": args.steps,
               **{f"{name}_ms": statistics.median(values) for name, values in times.items()},
               **{f"{name}_rounds_ms": values for name, values in times.items()}}
        if args.against:
            row["this_over_against"] = row["this_ms"] / row["against_ms"]
            row["against"] = str(args.against)
        print(json.dumps({k: v for k, v in row.items() if not k.endswith("rounds_ms")}), flush=True)
        rows.append(row)
    write_result("train_step_speed", rows, args.out)


if __name__ == "__main__":
    main()
