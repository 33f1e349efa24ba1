"""MD stability of trained potentials: Langevin at high temperature until a bond breaks or atoms collide.

    python -m benchmarks.md_stability --mlip-model RUN/model.mlip --mace-model RUN/mace.model \
        --mace-python .bench/mace/bin/python --structure ../shared/data/acac/test_MD_300K.xyz \
        --temperatures 600 1200 --ps 10 --name acac

Each (model, temperature, seed) run starts from the first frame of `--structure` with
Maxwell-Boltzmann velocities (seed s draws velocities from rng 2s and the thermostat's noise
from rng 2s + 1; `--seeds N` runs s = 0 … N−1, since one trajectory says little about a
rare event) and integrates Langevin dynamics (ASE, 0.5 fs, friction 0.01/fs, centre of mass
fixed by `FixCom`; results before 2026-11-25 used Langevin's `fixcm=True`, which ran ~20 %
hot on this 15-atom molecule: 712 K against 590 K with `FixCom` at 600 K). Every 10 steps it checks the bonds of the starting structure (`BondWatch`):
the run fails when a heavy-atom bond (closer than 1.2 × the sum of covalent radii at the
start) stretches beyond 1.6× its starting length, when a hydrogen's nearest heavy atom
(whichever it is: proton transfer is allowed and counted) is beyond 1.6× its starting X–H
length, or when any two atoms come within 0.6 Å. Reports the time to failure (or the full
length), steps per second and the mean temperature. mlip runs in this process' environment,
MACE through the same file run by the MACE venv's python (`--worker`), pinned to its own core
with one thread; the two packages run side by side. Several `--mlip-model`s (e.g. with and
without the ZBL prior) each get a worker; workers share the cores round-robin (steps/s are
comparable only between workers that had a core to themselves).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


class BondWatch:
    """The bonds of a starting structure, checked for breaking in a way that allows proton transfer.

    Bonds between heavy atoms (pairs closer than 1.2 × the sum of covalent radii) break when
    stretched beyond `limit` × their starting length. A hydrogen is intact while its nearest
    heavy atom, whichever it is, stays within `limit` × its starting X–H length: a proton
    hopping between two oxygens (the enol of acetylacetone does this at a low barrier) is
    chemistry, not a failure, and is counted apart as a transfer.
    """

    def __init__(self, atoms, limit: float = 1.6):
        from ase.data import covalent_radii

        distances = atoms.get_all_distances()
        radii = covalent_radii[atoms.numbers]
        self.hydrogens = np.flatnonzero(atoms.numbers == 1)
        self.heavy = np.flatnonzero(atoms.numbers != 1)
        heavy_distances = distances[np.ix_(self.heavy, self.heavy)]
        bonded = np.triu(heavy_distances < 1.2 * (radii[self.heavy, None] + radii[None, self.heavy]), k=1)
        self.pairs = self.heavy[np.argwhere(bonded)]
        self.lengths = heavy_distances[bonded]
        to_heavy = distances[np.ix_(self.hydrogens, self.heavy)]
        self.partners = to_heavy.argmin(axis=1) if len(self.heavy) else np.zeros(0, dtype=int)
        self.hydrogen_lengths = to_heavy.min(axis=1) if len(self.heavy) else np.zeros(0)
        self.limit = limit

    def check(self, atoms) -> dict:
        """Largest stretch (heavy bonds and X–H), closest pair (Å), hydrogens now nearest another heavy atom."""
        distances = atoms.get_all_distances()
        stretch = float((distances[self.pairs[:, 0], self.pairs[:, 1]] / self.lengths).max()) if len(self.pairs) else 0.0
        transfers = 0
        if len(self.hydrogens) and len(self.heavy):
            to_heavy = distances[np.ix_(self.hydrogens, self.heavy)]
            stretch = max(stretch, float((to_heavy.min(axis=1) / self.hydrogen_lengths).max()))
            transfers = int((to_heavy.argmin(axis=1) != self.partners).sum())
        closest = float(distances[np.triu_indices(len(atoms), k=1)].min())
        return {"max_bond_stretch": stretch, "closest_pair_A": closest, "hydrogens_transferred": transfers,
                "broken": stretch > self.limit or closest < 0.6}


def run_md(calculator, atoms, temperature: float, picoseconds: float, timestep_fs: float = 0.5, seed: int = 0) -> dict:
    """Langevin MD until the end or the first broken bond / collision; returns the failure time and speed."""
    from ase import units
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from benchmarks.systems import thermalize

    atoms = atoms.copy()
    atoms.calc = calculator
    watch = BondWatch(atoms)
    thermalize(atoms, temperature_K=temperature, rng=np.random.default_rng(2 * seed))
    # the centre of mass fixed by a constraint (its 3 degrees of freedom leave the temperature):
    # Langevin's own fixcm=True over-heats small molecules (~700 K measured for 600 K on acac)
    atoms.set_constraint(FixCom())
    dynamics = Langevin(atoms, timestep_fs * units.fs, temperature_K=temperature, friction=0.01 / units.fs,
                        fixcm=False, rng=np.random.default_rng(2 * seed + 1))
    steps, failure, temperatures, transfer_steps = int(round(picoseconds * 1000 / timestep_fs)), None, [], 0
    start = time.perf_counter()
    for step in range(0, steps, 10):
        dynamics.run(10)
        state = watch.check(atoms)
        temperatures.append(atoms.get_temperature())
        transfer_steps += 10 * bool(state["hydrogens_transferred"])
        if state["broken"]:
            failure = {"step": step + 10, **state}
            break
    seconds = time.perf_counter() - start
    done = failure["step"] if failure else steps
    return {"temperature_K": temperature, "seed": seed, "planned_ps": picoseconds, "stable_ps": done * timestep_fs / 1000,
            "failed": failure is not None, "failure": failure, "steps_per_s": done / seconds,
            "mean_temperature_K": float(np.mean(temperatures)),
            "fraction_of_time_a_proton_is_transferred": transfer_steps / max(done, 1)}


def worker(package: str, model: str, structure: str, temperatures: list[float], picoseconds: float,
           seeds: int = 1, first_seed: int = 0) -> None:
    """Runs every (temperature, seed) and prints each result as one JSON line on stdout as soon as it is known."""
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
    for temperature in temperatures:
        for seed in range(first_seed, first_seed + seeds):
            row = {"package": package, "model": model, **run_md(calculator, atoms, temperature, picoseconds, seed=seed)}
            print(f"[{package} {Path(model).name}] {temperature:.0f} K seed {seed}: stable {row['stable_ps']:.2f} "
                  f"ps", file=sys.stderr, flush=True)
            print(json.dumps(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mlip-model", required=True, nargs="+", help="one or more mlip model files")
    parser.add_argument("--mace-model")
    parser.add_argument("--mace-python")
    parser.add_argument("--structure", required=True, help="starting structure (first frame)")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[600.0, 1200.0])
    parser.add_argument("--ps", type=float, default=10.0, help="length of each run (ps)")
    parser.add_argument("--seeds", type=int, default=1, help="trajectories per model and temperature")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds run are first-seed … first-seed + seeds − 1")
    parser.add_argument("--name", default="md")
    parser.add_argument("--worker", choices=["mlip", "mace"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        model = args.mlip_model[0] if args.worker == "mlip" else args.mace_model
        worker(args.worker, model, args.structure, args.temperatures, args.ps, args.seeds, args.first_seed)
        return
    from benchmarks.common import write_result

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    common = ["--structure", args.structure, "--ps", str(args.ps), "--seeds", str(args.seeds),
              "--first-seed", str(args.first_seed),
              "--temperatures", *map(str, args.temperatures)]
    jobs = [("mlip", sys.executable, ["--mlip-model", model]) for model in args.mlip_model]
    if args.mace_python and args.mace_model:
        jobs.append(("mace", args.mace_python, ["--mlip-model", args.mlip_model[0], "--mace-model", args.mace_model]))
    cores = os.cpu_count() or 1
    processes = [subprocess.Popen(["taskset", "-c", str(i % cores), python, str(Path(__file__).resolve()), *common,
                                   *models, "--worker", package], stdout=subprocess.PIPE, env=env, cwd=ROOT, text=True)
                 for i, (package, python, models) in enumerate(jobs)]
    rows, lock = [], threading.Lock()
    protocol = ("Langevin 0.5 fs, friction 0.01/fs, FixCom; heavy-atom bonds or a hydrogen's nearest heavy atom > "
                "1.6x the start, or pairs < 0.6 A end a run (proton transfer allowed)")

    def collect(process: subprocess.Popen) -> None:
        """Adds each row a worker prints and rewrites the JSON, so that a stopped run keeps what it finished."""
        for line in process.stdout:
            if line.startswith("{"):
                with lock:
                    rows.append(json.loads(line))
                    write_result(f"md_stability_{args.name}", {"structure": args.structure, "rows": rows,
                                                               "complete": False, "protocol": protocol})

    readers = [threading.Thread(target=collect, args=(process,)) for process in processes]
    for reader in readers:
        reader.start()
    for process, reader in zip(processes, readers):
        reader.join()
        if process.wait() != 0:
            raise SystemExit(f"an MD worker failed (exit {process.returncode}); finished rows are in "
                             f"benchmarks/results/md_stability_{args.name}.json")
    for row in rows:
        print(f"{row['package']:5s} {row['model']:>40s} {row['temperature_K']:6.0f} K seed "
              f"{row['seed']}: stable {row['stable_ps']:.2f} of "
              f"{row['planned_ps']:g} ps{' (failed)' if row['failed'] else ''}, {row['steps_per_s']:.0f} steps/s")
    write_result(f"md_stability_{args.name}", {"structure": args.structure, "rows": rows, "complete": True,
                                               "protocol": protocol})


if __name__ == "__main__":
    main()
