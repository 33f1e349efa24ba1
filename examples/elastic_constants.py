"""Lattice constant, bulk modulus and cubic elastic constants of a model against DFT (mlearn `Elastic` cells).

    python examples/elastic_constants.py MODEL.mlip ../shared/data/mlearn/Si/training.json --out si_elastic.json

DFT side: the `Elastic` group of an mlearn training file holds the 2×2×2 ground state
strained by ±2…10 % in six modes, with DFT stresses. The reference cell is the mean of those
cells (each mode is strained both ways, so the mean is close to the unstrained cell); the strain of
every cell is ε = sym(cell_ref⁻¹ · cell) − I (the group's "Ground state" cell is the reference
when present, as in Mo). C11, C12 and C44 come from a least-squares fit of
the cubic stress–strain law (σ_xx = C11 ε_xx + C12 (ε_yy + ε_zz), σ_yz = 2 C44 ε_yz, with a
constant residual stress) to the cells with |ε| ≤ `--max-strain` (2 % by default).
Model side: the same fit to the model's stresses on the very same cells and positions, so
both see identical structures; and the model's own equilibrium lattice constant and bulk
modulus from a Birch–Murnaghan fit of E(V) of the reference cell scaled by ±3 %. The DFT
lattice constant is the reference cell's; its bulk modulus (C11 + 2 C12) / 3.
Any ASE calculator works in `model_table` (e.g. MACE's, for a side-by-side run).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from ase import units
from ase.eos import EquationOfState

import mlip.io

GPA = 1.0 / units.GPa  # eV/Å³ → GPa


def elastic_frames(path: Path) -> tuple[list, np.ndarray]:
    """The strained cells of an mlearn JSON's `Elastic` group (the most common size) as mlip frames
    (ASE stress sign, eV/Å³), and the reference cell: the group's "Ground state" cell, else their mean."""
    records = json.loads(Path(path).read_text())
    frames = mlip.io.read(path, require=("energy", "forces", "stress"))
    chosen = [(f, r) for f, r in zip(frames, records) if r.get("group") == "Elastic"]
    if not chosen:
        raise SystemExit(f"{path} has no 'Elastic' records; give an mlearn training.json")
    sizes = [len(f.numbers) for f, _ in chosen]
    chosen = [(f, r) for f, r in chosen if len(f.numbers) == max(set(sizes), key=sizes.count)]
    ground = [f.cell for f, r in chosen if "ground state" in str(r.get("description", "")).lower()]
    return [f for f, _ in chosen], (ground[0] if ground else np.mean([f.cell for f, _ in chosen], axis=0))


def strains(cells: list[np.ndarray], reference: np.ndarray) -> np.ndarray:
    """Symmetric small strains (K, 3, 3) of `cells` (rows = lattice vectors) against `reference`."""
    out = []
    for cell in cells:
        deformation = np.linalg.solve(reference, cell).T  # cell.T = F @ reference.T
        out.append(0.5 * (deformation + deformation.T) - np.eye(3))
    return np.array(out)


def fit_cubic(strain: np.ndarray, stress: np.ndarray) -> dict[str, float]:
    """C11, C12, C44 (GPa) from σ = C ε of a cubic crystal, least squares with a residual stress per component."""
    rows, values = [], []
    for e, s in zip(strain, stress):
        for i in range(3):
            others = e[(i + 1) % 3, (i + 1) % 3] + e[(i + 2) % 3, (i + 2) % 3]
            rows.append([e[i, i], others, 0.0, 1.0, 0.0])
            values.append(s[i, i])
        for i, j in ((1, 2), (0, 2), (0, 1)):
            rows.append([0.0, 0.0, 2 * e[i, j], 0.0, 1.0])
            values.append(s[i, j])
    solution = np.linalg.lstsq(np.array(rows), np.array(values), rcond=None)[0]
    c11, c12, c44 = (float(v) * GPA for v in solution[:3])
    return {"C11_GPa": c11, "C12_GPa": c12, "C44_GPa": c44, "B_from_C_GPa": (c11 + 2 * c12) / 3}


def model_table(calculator, frames: list, reference: np.ndarray, strain: np.ndarray, keep: np.ndarray,
                atoms_per_cubic_cell: int) -> dict[str, float]:
    """The model's elastic constants on the DFT cells and its own equilibrium lattice constant and bulk modulus."""
    stresses = []
    for frame in np.array(frames, dtype=object)[keep]:
        atoms = frame.to_atoms()
        atoms.calc = calculator
        stresses.append(atoms.get_stress(voigt=False))
    table = fit_cubic(strain[keep], np.array(stresses))
    base = frames[int(np.argmin(np.abs(strain).reshape(len(frames), -1).max(axis=1)))].to_atoms()
    base.set_cell(reference, scale_atoms=True)
    volumes, energies = [], []
    for factor in np.linspace(0.97, 1.03, 9):
        atoms = base.copy()
        atoms.set_cell(reference * factor, scale_atoms=True)
        atoms.calc = calculator
        volumes.append(atoms.get_volume())
        energies.append(atoms.get_potential_energy())
    volume, _, modulus = EquationOfState(volumes, energies, eos="birchmurnaghan").fit()
    table["lattice_constant_A"] = float((volume * atoms_per_cubic_cell / len(base)) ** (1 / 3))
    table["bulk_modulus_GPa"] = float(modulus * GPA)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="an mlip model file")
    parser.add_argument("mlearn", type=Path, help="mlearn training.json with the 'Elastic' group")
    parser.add_argument("--max-strain", type=float, default=0.02, help="largest |strain| used in the fits")
    parser.add_argument("--atoms-per-cubic-cell", type=int, default=8, help="8 for diamond Si, 2 for bcc Mo")
    parser.add_argument("--out", type=Path, help="JSON of both tables and the relative errors")
    args = parser.parse_args()
    from mlip.calculator import MLIPCalculator

    frames, reference = elastic_frames(args.mlearn)
    strain = strains([f.cell for f in frames], reference)
    keep = np.abs(strain).reshape(len(frames), -1).max(axis=1) <= args.max_strain + 1e-9
    dft = fit_cubic(strain[keep], np.array([f.stress for f in frames])[keep])
    dft["lattice_constant_A"] = float((abs(np.linalg.det(reference)) * args.atoms_per_cubic_cell
                                       / len(frames[0].numbers)) ** (1 / 3))
    dft["bulk_modulus_GPa"] = dft["B_from_C_GPa"]
    model = model_table(MLIPCalculator(str(args.model), dtype=torch.float64), frames, reference, strain, keep,
                        args.atoms_per_cubic_cell)
    errors = {k: 100 * (model[k] - dft[k]) / dft[k] for k in dft}
    print(f"{'quantity':<22}{'DFT':>10}{'model':>10}{'error %':>10}")
    for key in ("lattice_constant_A", "bulk_modulus_GPa", "C11_GPa", "C12_GPa", "C44_GPa"):
        print(f"{key:<22}{dft[key]:>10.3f}{model[key]:>10.3f}{errors[key]:>10.1f}")
    print(f"({int(keep.sum())} of {len(frames)} Elastic cells with |strain| <= {args.max_strain})")
    if args.out:
        args.out.write_text(json.dumps({"dft": dft, "model": model, "error_percent": errors,
                                        "cells_used": int(keep.sum())}, indent=1))


if __name__ == "__main__":
    main()
