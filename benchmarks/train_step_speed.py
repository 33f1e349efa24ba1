"""Training-step time of `equivariant_medium` (or other models): what sets the epochs a fixed budget buys.

    python -m benchmarks.train_step_speed --out benchmarks/results/train_step_speed.json
    python -m benchmarks.train_step_speed --against /path/to/other/checkout --rounds 3   # before/after
    python -m benchmarks.train_step_speed --batches aspirin Cu32 --compile both \
        --variants equivariant_medium transformer_small '{"name": "edge", "preset": "transformer_small", "attention": "edge"}'

One step = energies, forces (create_graph) and, for crystals, stress of a batch; the loss
E² + F² (+ σ²) backward to the weights, as `mlip-train` does with a force loss. Batches: 5 rattled
aspirin molecules (21 atoms), 5 rattled 64-atom diamond Si cells with stress (28 neighbours at 5 Å) and 5
rattled 32-atom fcc Cu cells with stress (42 neighbours), 5 Å, float32, one torch thread by default (the
accuracy front's setting). `--variants`: presets or JSON objects {"name", "preset", network options...};
`--compile eager|compiled|both`: the step through `mlip.train.compiled_forces.CompiledForces` (its first
call, which compiles, is not timed, and is reported apart as `first_step_s`). Each (checkout, batch) runs in a fresh
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
EXTRA_BATCHES = ("Cu32",)
WORKER = Path(__file__).resolve()


def parse_variant(text: str) -> dict:
    """A variant from a preset name or a JSON object {"name", "preset", network options...}."""
    variant = json.loads(text) if text.lstrip().startswith("{") else {"preset": text}
    variant.setdefault("name", variant.get("preset", "equivariant_medium"))
    return variant


def step_ms(batch_name: str, threads: int, steps: int, variant: dict | None = None,
            compiled: bool = False) -> tuple[float, float]:
    """Median wall time (ms) of `steps` training steps after 3 warm-up steps, in this process, and the
    seconds of the first step (which compiles, with `compiled`)."""
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
    from ase.build import bulk

    atoms = (aspirin() if batch_name == "aspirin" else silicon(64) if batch_name == "Si64"
             else bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2))
    periodic = bool(atoms.pbc.any())
    rng = np.random.default_rng(0)
    frames = [Frame(numbers=atoms.numbers, positions=atoms.positions + rng.normal(0.0, 0.05, (len(atoms), 3)),
                    cell=atoms.cell.array, pbc=atoms.pbc) for _ in range(5)]
    batch = GraphBatch.from_frames(frames, 5.0)
    torch.manual_seed(0)
    variant = dict(variant or {"preset": "equivariant_medium"})
    variant.pop("name", None)
    options = load_preset(variant.pop("preset", "equivariant_medium"))
    options.update(avg_num_neighbors=20.0)
    options.update(variant)
    potential = build_potential(elements=sorted(set(atoms.numbers.tolist())), cutoff=5.0, dtype=torch.float32,
                                **options).train()
    forward = None
    if compiled:
        from mlip.train.compiled_forces import CompiledForces

        forward = CompiledForces(potential)

    def step() -> float:
        start = time.perf_counter()
        out = (forward(batch, stress=periodic) if forward is not None
               else potential(batch, forces=True, stress=periodic, create_graph=True))
        loss = out["energy"].square().sum() + out["forces"].square().sum()
        if periodic:
            loss = loss + out["stress"].square().sum()
        loss.backward()
        return time.perf_counter() - start

    first = step()
    for _ in range(2):
        step()
    return statistics.median(step() for _ in range(steps)) * 1e3, first


def run_worker(checkout: Path, batch_name: str, threads: int, steps: int, variant: dict | None = None,
               compiled: bool = False) -> tuple[float, float]:
    """step_ms in a fresh process with `checkout`'s mlip first on the path."""
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(checkout), str(WORKER.parent.parent)]),
                       OMP_NUM_THREADS=str(threads))
    command = [sys.executable, str(WORKER), "--worker", batch_name, "--threads", str(threads), "--steps", str(steps),
               "--variants", json.dumps(variant or {"preset": "equivariant_medium"})]
    result = subprocess.run(command + (["--compile", "compiled"] if compiled else []), env=environment,
                            capture_output=True, text=True, check=True)
    median, first = result.stdout.strip().splitlines()[-1].split()
    return float(median), float(first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", nargs="+", default=list(BATCHES), choices=BATCHES + EXTRA_BATCHES)
    parser.add_argument("--variants", nargs="+", default=["equivariant_medium"],
                        help="presets or JSON objects {\"name\", \"preset\", network options...}")
    parser.add_argument("--compile", choices=("eager", "compiled", "both"), default="eager")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per checkout")
    parser.add_argument("--against", type=Path, default=None, help="another checkout (e.g. a git worktree of the "
                        "commit before) whose mlip runs the same steps, alternating with this one")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    variants = [parse_variant(text) for text in args.variants]
    if args.worker:
        print(*step_ms(args.worker, args.threads, args.steps, variants[0], args.compile == "compiled"))
        return
    from benchmarks.common import write_result

    here = WORKER.parent.parent
    checkouts = {"this": here} | ({"against": args.against.resolve()} if args.against else {})
    modes = {"eager": [False], "compiled": [True], "both": [False, True]}[args.compile]
    rows = []
    for batch_name, variant, compiled in ((b, v, c) for b in args.batches for v in variants for c in modes):
        times: dict[str, list[float]] = {name: [] for name in checkouts}
        firsts: dict[str, list[float]] = {name: [] for name in checkouts}
        for round_ in range(args.rounds):
            order = list(checkouts.items()) if round_ % 2 == 0 else list(reversed(checkouts.items()))
            for name, checkout in order:
                median, first = run_worker(checkout, batch_name, args.threads, args.steps, variant, compiled)
                times[name].append(median)
                firsts[name].append(first)
        row = {"batch": batch_name, "variant": variant["name"], "compiled": compiled, "threads": args.threads,
               "steps": args.steps, **{f"{name}_ms": statistics.median(values) for name, values in times.items()},
               **{f"{name}_first_step_s": values[0] for name, values in firsts.items()},
               **{f"{name}_rounds_ms": values for name, values in times.items()}}
        if args.against:
            row["this_over_against"] = row["this_ms"] / row["against_ms"]
            row["against"] = str(args.against)
        print(json.dumps({k: v for k, v in row.items() if not k.endswith("rounds_ms")}), flush=True)
        rows.append(row)
    write_result("train_step_speed", rows, args.out)


if __name__ == "__main__":
    main()
