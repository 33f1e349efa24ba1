"""MD stability of trained potentials: Langevin at high temperature until a bond breaks or atoms collide.

    python -m benchmarks.md_stability --mlip-model RUN/model.mlip --mace-model RUN/mace.model \
        --mace-python .bench/mace/bin/python --structure ../shared/data/acac/test_MD_300K.xyz \
        --temperatures 600 1200 --ps 10 --name acac

Each (package, temperature) run starts from the first frame of `--structure` with
Maxwell-Boltzmann velocities (seed 0) and integrates Langevin dynamics (ASE, 0.5 fs,
friction 0.01/fs). Every 10 steps it checks the bonds of the starting structure (pairs closer
than 1.2 × the sum of covalent radii): the run fails when a bond stretches beyond 1.6× its
starting length or any two atoms come within 0.6 Å. Reports the time to failure (or the full
length), steps per second and the mean temperature. mlip runs in this process' environment,
MACE through the same file run by the MACE venv's python (`--worker`), pinned to its own core
with one thread; the two packages run side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def bonded_pairs(atoms) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j) closer than 1.2 × the sum of covalent radii, and their lengths (Å)."""
    from ase.data import covalent_radii

    distances = atoms.get_all_distances()
    radii = covalent_radii[atoms.numbers]
    bonded = np.triu(distances < 1.2 * (radii[:, None] + radii[None, :]), k=1)
    pairs = np.argwhere(bonded)
    return pairs, distances[bonded]


def run_md(calculator, atoms, temperature: float, picoseconds: float, timestep_fs: float = 0.5) -> dict:
    """Langevin MD until the end or the first broken bond / collision; returns the failure time and speed."""
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    atoms = atoms.copy()
    atoms.calc = calculator
    pairs, lengths = bonded_pairs(atoms)
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=np.random.default_rng(0))
    dynamics = Langevin(atoms, timestep_fs * units.fs, temperature_K=temperature, friction=0.01 / units.fs,
                        rng=np.random.default_rng(1))
    steps, failure, temperatures = int(round(picoseconds * 1000 / timestep_fs)), None, []
    start = time.perf_counter()
    for step in range(0, steps, 10):
        dynamics.run(10)
        distances = atoms.get_all_distances()
        stretch = float((distances[pairs[:, 0], pairs[:, 1]] / lengths).max())
        closest = float(distances[np.triu_indices(len(atoms), k=1)].min())
        temperatures.append(atoms.get_temperature())
        if stretch > 1.6 or closest < 0.6:
            failure = {"step": step + 10, "max_bond_stretch": stretch, "closest_pair_A": closest}
            break
    seconds = time.perf_counter() - start
    done = failure["step"] if failure else steps
    return {"temperature_K": temperature, "planned_ps": picoseconds, "stable_ps": done * timestep_fs / 1000,
            "failed": failure is not None, "failure": failure, "steps_per_s": done / seconds,
            "mean_temperature_K": float(np.mean(temperatures))}


def worker(package: str, model: str, structure: str, temperatures: list[float], picoseconds: float) -> list[dict]:
    import ase.io
    import torch

    torch.set_num_threads(1)
    if package == "mace":
        from mace.calculators import MACECalculator

        calculator = MACECalculator(model_paths=model, device="cpu", default_dtype="float64")
    else:
        from mlip.calculator import MLIPCalculator

        calculator = MLIPCalculator(model, dtype=torch.float64)
    atoms = ase.io.read(structure, 0)
    return [{"package": package, "model": model, **run_md(calculator, atoms, t, picoseconds)} for t in temperatures]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mlip-model", required=True)
    parser.add_argument("--mace-model")
    parser.add_argument("--mace-python")
    parser.add_argument("--structure", required=True, help="starting structure (first frame)")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[600.0, 1200.0])
    parser.add_argument("--ps", type=float, default=10.0, help="length of each run (ps)")
    parser.add_argument("--name", default="md")
    parser.add_argument("--worker", choices=["mlip", "mace"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        model = args.mlip_model if args.worker == "mlip" else args.mace_model
        print(json.dumps(worker(args.worker, model, args.structure, args.temperatures, args.ps)))
        return
    from benchmarks.common import write_result

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    common = ["--mlip-model", args.mlip_model, "--structure", args.structure, "--ps", str(args.ps),
              "--temperatures", *map(str, args.temperatures)]
    jobs = [("mlip", sys.executable, 0)]
    if args.mace_python and args.mace_model:
        jobs.append(("mace", args.mace_python, 1))
        common += ["--mace-model", args.mace_model]
    processes = [subprocess.Popen(["taskset", "-c", str(core), python, str(Path(__file__).resolve()), *common,
                                   "--worker", package], stdout=subprocess.PIPE, env=env, cwd=ROOT, text=True)
                 for package, python, core in jobs]
    rows = []
    for process in processes:
        out, _ = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"an MD worker failed (exit {process.returncode})")
        rows += json.loads(out.strip().splitlines()[-1])
    for row in rows:
        print(f"{row['package']:5s} {row['temperature_K']:6.0f} K: stable {row['stable_ps']:.2f} of "
              f"{row['planned_ps']:g} ps{' (failed)' if row['failed'] else ''}, {row['steps_per_s']:.0f} steps/s")
    write_result(f"md_stability_{args.name}", {"structure": args.structure, "rows": rows,
                                               "protocol": "Langevin 0.5 fs, friction 0.01/fs, bonds > 1.6x or "
                                                           "pairs < 0.6 A end a run"})


if __name__ == "__main__":
    main()
