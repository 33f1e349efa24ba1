"""Batched NVT MD on torch-sim against ASE's Langevin one structure at a time: structure-steps per second.

    python -m benchmarks.md_batched_throughput --model front_work/acac/mlip/equivariant_medium/model.mlip
    python -m benchmarks.md_batched_throughput --compile --out benchmarks/results/md_batched_throughput_compiled.json

32 acetylacetone molecules (data/acac_test_MD_300K_50.xyz, 15 atoms) and, with --crystal-model,
32 Si cells of 8 atoms; Langevin at 300 K, 0.5 fs, friction 0.01/fs, the same number of steps on
both sides. Reports structure-steps/s of each and the speed-up, plus the mean temperature of the
last half of the batched run as a sanity check. Without a model a fresh untrained one is used
(the cost per step is right; the dynamics is not).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from ase import units
from ase.build import bulk
from ase.md.langevin import Langevin

from benchmarks.common import write_result
from benchmarks.relax_throughput import _model, molecules
from benchmarks.systems import thermalize
from mlip.calculator import MLIPCalculator
from mlip.simulate.batched_md import run_md


def ase_md(potential, structures: list, steps: int, timestep_fs: float, temperature_K: float) -> float:
    """Seconds for `steps` Langevin steps of every structure, one after the other."""
    calculator = MLIPCalculator(potential)
    start = time.perf_counter()
    for k, atoms in enumerate(structures):
        atoms = atoms.copy()
        atoms.calc = calculator
        thermalize(atoms, temperature_K=temperature_K, rng=np.random.default_rng(k))
        Langevin(atoms, timestep=timestep_fs * units.fs, temperature_K=temperature_K, friction=0.01 / units.fs,
                 rng=np.random.default_rng(k)).run(steps)
    return time.perf_counter() - start


def compare(name: str, potential, structures: list, steps: int, timestep_fs: float, temperature_K: float,
            compiled: bool = False) -> dict:
    start = time.perf_counter()
    result = run_md(potential, structures, steps, timestep_fs, temperature_K, interval=max(steps // 10, 1))
    batched_s = time.perf_counter() - start
    single_s = ase_md(potential, structures, steps, timestep_fs, temperature_K)
    work = len(structures) * steps
    row = {"name": name, "structures": len(structures), "atoms_each": len(structures[0]), "steps": steps,
           "timestep_fs": timestep_fs, "torchsim_s": batched_s, "torchsim_structure_steps_per_s": work / batched_s,
           "ase_s": single_s, "ase_structure_steps_per_s": work / single_s, "speed_up": single_s / batched_s,
           "torchsim_mean_temperature_K_last_half": float(result.temperatures[len(result.temperatures) // 2:].mean())}
    print(f"{name}: torch-sim {row['torchsim_structure_steps_per_s']:.0f} structure-steps/s, ASE one by one "
          f"{row['ase_structure_steps_per_s']:.0f}: {row['speed_up']:.1f}x "
          f"(batched run at {row['torchsim_mean_temperature_K_last_half']:.0f} K)", flush=True)
    if compiled:
        row.update(compiled_run(potential, structures, steps, timestep_fs, temperature_K, single_s, batched_s))
    return row


def compiled_run(potential, structures: list, steps: int, timestep_fs: float, temperature_K: float,
                 single_s: float, batched_s: float) -> dict:
    """The same batched run with the network under torch.compile, twice: the first run compiles a
    graph for every neighbour-degree bucket it meets (timed with it), the second (same seeds, so
    the same buckets) is the steady state of a long simulation."""
    from mlip.export.compiled import compile_potential

    fast = compile_potential(potential)
    seconds = []
    for _ in range(2):
        start = time.perf_counter()
        run_md(fast, structures, steps, timestep_fs, temperature_K, interval=max(steps // 10, 1))
        seconds.append(time.perf_counter() - start)
    work = len(structures) * steps
    row = {"torchsim_compiled_first_run_s": seconds[0], "torchsim_compiled_s": seconds[1],
           "torchsim_compiled_structure_steps_per_s": work / seconds[1], "compiled_speed_up": single_s / seconds[1],
           "compiled_over_eager_batched": batched_s / seconds[1]}
    print(f"  compiled: {row['torchsim_compiled_structure_steps_per_s']:.0f} structure-steps/s, "
          f"{row['compiled_speed_up']:.1f}x ASE one by one, {row['compiled_over_eager_batched']:.2f}x the eager "
          f"batched run (the first run, compiling included, took {seconds[0]:.0f} s)", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a model knowing H, C, O")
    parser.add_argument("--crystal-model", help="a model knowing Si (adds 32 Si cells of 8 atoms)")
    parser.add_argument("--structures", type=int, default=32)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--compile", action="store_true",
                        help="also time the batched run with the network under torch.compile (after compiling)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = [compare("acac molecules", _model(args.model, ["H", "C", "O"]), molecules(args.structures), args.steps,
                    0.5, 300.0, args.compile)]
    if args.crystal_model:
        cells = []
        for k in range(args.structures):
            atoms = bulk("Si", "diamond", a=5.468, cubic=True)
            atoms.rattle(0.03, seed=k)
            cells.append(atoms)
        rows.append(compare("Si8 cells", _model(args.crystal_model, ["Si"]), cells, args.steps, 1.0, 300.0,
                            args.compile))
    write_result("md_batched_throughput", {"rows": rows, "threads": torch.get_num_threads()}, args.out)


if __name__ == "__main__":
    main()
