"""Relax positions and cell, keeping symmetry: python md_scripts/relax_crystal.py MODEL STRUCTURE."""

import sys

import ase.io
from ase.constraints import FixSymmetry
from ase.filters import FrechetCellFilter
from ase.optimize import FIRE

from mlip.calculator import MLIPCalculator

model, structure = sys.argv[1], sys.argv[2]
atoms = ase.io.read(structure, index=0)
atoms.calc = MLIPCalculator(model)
atoms.set_constraint(FixSymmetry(atoms))
FIRE(FrechetCellFilter(atoms), logfile="-").run(fmax=0.01, steps=500)
ase.io.write("relaxed.xyz", atoms)
print(f"energy {atoms.get_potential_energy():.4f} eV, cell {atoms.cell.cellpar().round(4)}; wrote relaxed.xyz")
