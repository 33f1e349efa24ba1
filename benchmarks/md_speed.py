"""ASE-calculator cost per MD step, mlip against MACE's calculator, in the same run.

    python -m benchmarks.md_speed MLIP_MODEL.mlip [--mace-python .bench/mace/bin/python --mace-model M]

One step = energy + forces after nudging every atom by 1e-3 Å (the neighbour list is kept
with its skin, as in MD), median after warm-up, as in ../shared/bench/mace/speed.py, which
times MACE. Systems: the model's molecule (aspirin) and periodic diamond Si of 64, 512,
4,096 and 32,768 atoms (a fresh Si model of the same architecture; cost does not depend on
the weights). Also NVE steps/s on aspirin. MACE is skipped at 32,768 atoms (memory).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import ase.io
import numpy as np
import torch
from ase import units
from ase.md.verlet import VelocityVerlet

from benchmarks.common import write_result
from benchmarks.systems import aspirin, silicon, thermalize
from mlip.calculator import MLIPCalculator
from mlip.export import read_metadata
from mlip.models import build_potential

ROOT = Path(__file__).resolve().parents[1]
MACE_SPEED = ROOT.parent / "shared" / "bench" / "mace" / "speed.py"


def step_seconds(atoms, warm: int, measured: int) -> float:
    rng = np.random.default_rng(0)
    base = atoms.get_positions().copy()
    times = []
    for k in range(warm + measured):
        atoms.set_positions(base + rng.normal(0.0, 1e-3, base.shape))
        start = time.perf_counter()
        atoms.get_potential_energy()
        atoms.get_forces()
        if k >= warm:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def mlip_rows(model: str, sizes: list[int]) -> dict:
    molecule = aspirin()
    molecule.calc = MLIPCalculator(model)
    rows = [{"system": "aspirin", "atoms": len(molecule), "ms_per_step": 1e3 * step_seconds(molecule, 5, 50)}]
    header = read_metadata(model)
    torch.manual_seed(0)
    si_model = build_potential(header["architecture"], [14], header["cutoff"], **header["network"]).eval()
    for n in sizes:
        atoms = silicon(n)
        atoms.calc = MLIPCalculator(si_model)
        rows.append({"system": f"Si{n}", "atoms": n, "ms_per_step": 1e3 * step_seconds(atoms, 2, max(3, min(30, 3000 // n)))})
    for row in rows:
        row["us_per_atom_step"] = row["ms_per_step"] * 1e3 / row["atoms"]
        print("mlip", json.dumps(row), flush=True)
    thermalize(molecule, temperature_K=300, rng=np.random.default_rng(0))
    dynamics = VelocityVerlet(molecule, timestep=0.5 * units.fs)
    dynamics.run(5)
    start = time.perf_counter()
    dynamics.run(200)
    return {"package": "mlip", "rows": rows, "md_steps_per_s": 200 / (time.perf_counter() - start)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a trained mlip model for the molecule (aspirin)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 512, 4096, 32768])
    parser.add_argument("--mace-python", default=None)
    parser.add_argument("--mace-model", default=None, help="a trained MACE model (../shared/bench/mace/train.py)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    results = [mlip_rows(args.model, args.sizes)]
    if args.mace_python and args.mace_model:
        with tempfile.TemporaryDirectory() as tmp:
            out, molecule = Path(tmp) / "mace.json", Path(tmp) / "aspirin.xyz"
            ase.io.write(molecule, aspirin())
            repeats = [str(round((n / 8) ** (1 / 3))) for n in args.sizes if n <= 4096]
            subprocess.run([args.mace_python, str(MACE_SPEED), args.mace_model, str(molecule), str(out),
                            "--si", *repeats], check=True, cwd=ROOT)
            mace = json.loads(out.read_text())
        results.append({"package": "mace", "rows": mace["rows"], "md_steps_per_s": mace.get("md", {}).get("steps_per_s")})
    write_result("md_speed", results, args.out)


if __name__ == "__main__":
    main()
