"""Structures relaxed per second: batched FIRE (one model call per step for all) against
ASE's FIRE + FrechetCellFilter one structure at a time, same model, same criteria.

    python -m benchmarks.relax_throughput [--model MODEL.mlip] [--structures 32] [--repeat 2]

Default model: a fresh `equivariant_small` Cu potential (cost does not depend on the weights,
but step counts do: pass a trained model, e.g. from examples/emt_crystal_pipeline.py).
Structures: fcc Cu cells (4·repeat³ atoms) strained by up to ±3 % and rattled by 0.05 Å.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from ase.build import bulk

from benchmarks.common import write_result
from mlip.calculator import MLIPCalculator
from mlip.export import load
from mlip.models import build_potential
from mlip.models.presets import load_preset
from mlip.simulate.batched_relax import relax_batch
from mlip.simulate.relax import relax


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--structures", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--fmax", type=float, default=0.02)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.model:
        potential = load(args.model)
    else:
        torch.manual_seed(0)
        potential = build_potential(elements=["Cu"], cutoff=4.5, avg_num_neighbors=40.0,
                                    **load_preset("equivariant_small")).eval()
    rng = np.random.default_rng(0)
    structures = []
    for k in range(args.structures):
        atoms = bulk("Cu", "fcc", a=3.59 * (1 + rng.uniform(-0.03, 0.03)), cubic=True).repeat(args.repeat)
        atoms.rattle(0.05, seed=k)
        structures.append(atoms)
    start = time.perf_counter()
    _, _, steps = relax_batch(potential, structures, fmax=args.fmax)
    batched = time.perf_counter() - start
    calculator = MLIPCalculator(potential)
    start = time.perf_counter()
    single_steps = [relax(a, calculator, fmax=args.fmax).steps for a in structures]
    single = time.perf_counter() - start
    result = {"structures": args.structures, "atoms_each": len(structures[0]), "model": args.model or "fresh small",
              "batched_s": batched, "batched_structures_per_s": args.structures / batched,
              "batched_mean_steps": float(np.mean(steps)), "one_by_one_s": single,
              "one_by_one_structures_per_s": args.structures / single, "one_by_one_mean_steps": float(np.mean(single_steps)),
              "speed_up": single / batched}
    print(f"batched: {result['batched_structures_per_s']:.2f} structures/s ({result['batched_mean_steps']:.0f} steps); "
          f"one by one: {result['one_by_one_structures_per_s']:.2f} structures/s "
          f"({result['one_by_one_mean_steps']:.0f} steps); speed-up {result['speed_up']:.1f}x")
    write_result("relax_throughput", result, args.out)


if __name__ == "__main__":
    main()
