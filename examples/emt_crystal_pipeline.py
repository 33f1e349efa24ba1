"""Crystal pipeline end to end: EMT-labelled copper → train with stress → relax → equation of state.

    python examples/emt_crystal_pipeline.py --out emt_out [--minutes 3]

1. Labels strained (±5 %), sheared and rattled 2×2×2 fcc Cu supercells with ASE's EMT
   calculator (energy, forces, stress) and writes them to extended XYZ.
2. Trains the small equivariant potential with a stress loss (`mlip-train`).
3. Relaxes a 4 % strained cell with the trained model (positions and cell, FIRE) and fits a
   Birch–Murnaghan equation of state; compares the lattice constant and bulk modulus with
   EMT's own. Prints both and writes `OUT/pipeline.json`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import ase.io
import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.eos import EquationOfState
from ase.units import GPa

from mlip.calculator import MLIPCalculator
from mlip.simulate.relax import relax
from mlip.train.cli import main as train


def emt_dataset(path: Path, n: int = 120, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        atoms = bulk("Cu", "fcc", a=3.59, cubic=True).repeat(2)
        strain = np.eye(3) * (1 + rng.uniform(-0.05, 0.05)) + rng.uniform(-0.01, 0.01, (3, 3))
        atoms.set_cell(atoms.cell.array @ strain, scale_atoms=True)
        atoms.rattle(rng.uniform(0.0, 0.08), seed=int(rng.integers(1 << 30)))
        atoms.calc = EMT()
        atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")
    return path


def lattice_and_bulk_modulus(calculator) -> tuple[float, float]:
    """Relaxed fcc lattice constant (Å) from a 4 % strained cell, and bulk modulus (GPa) from an EOS fit."""
    start = bulk("Cu", "fcc", a=3.59 * 1.04, cubic=True)
    relaxed = relax(start, calculator, fmax=1e-3, smax=1e-5, max_steps=400).atoms
    a0 = float(np.cbrt(relaxed.get_volume()))
    volumes, energies = [], []
    for scale in np.linspace(0.97, 1.03, 9):
        atoms = bulk("Cu", "fcc", a=a0 * scale, cubic=True)
        atoms.calc = calculator
        volumes.append(atoms.get_volume())
        energies.append(atoms.get_potential_energy())
    _, _, b = EquationOfState(volumes, energies, eos="birchmurnaghan").fit()
    return a0, float(b / GPa)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("emt_out"))
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--structures", type=int, default=120)
    parser.add_argument("--epochs", type=int, default=None, help="train for this many epochs instead of --minutes")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    data = emt_dataset(args.out / "cu_emt.xyz", args.structures)
    minutes, seconds = int(args.minutes), int(round(args.minutes % 1 * 60))
    budget = (["--trainer.max_epochs", str(args.epochs)] if args.epochs else
              ["--trainer.max_epochs", "100000", "--trainer.max_time", f"00:00:{minutes:02d}:{seconds:02d}"])
    train(["--run_dir", str(args.out / "run"), "--data.train", str(data), "--data.cutoff", "4.5",
           "--data.val_fraction", "0.1", "--data.batch_size", "4", "--model.model", "equivariant_small",
           "--model.dtype", "float64", "--model.energy_weight", "10", "--model.forces_weight", "10",
           "--model.stress_weight", "10000", "--model.lr", "0.005", *budget, "--trainer.enable_progress_bar",
           "false"])
    emt = lattice_and_bulk_modulus(EMT())
    mlip_model = lattice_and_bulk_modulus(MLIPCalculator(args.out / "run" / "model.mlip"))
    result = {"emt": {"lattice_A": emt[0], "bulk_modulus_GPa": emt[1]},
              "mlip": {"lattice_A": mlip_model[0], "bulk_modulus_GPa": mlip_model[1]},
              "lattice_error_percent": 100 * (mlip_model[0] / emt[0] - 1),
              "bulk_modulus_error_percent": 100 * (mlip_model[1] / emt[1] - 1)}
    (args.out / "pipeline.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"lattice constant: EMT {emt[0]:.4f} Å, mlip {mlip_model[0]:.4f} Å ({result['lattice_error_percent']:+.2f} %)\n"
          f"bulk modulus:     EMT {emt[1]:.1f} GPa, mlip {mlip_model[1]:.1f} GPa "
          f"({result['bulk_modulus_error_percent']:+.1f} %)")
    return result


if __name__ == "__main__":
    main()
