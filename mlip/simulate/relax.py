"""Relaxation of positions and cell with ASE optimisers (FIRE, BFGS, LBFGS) on any calculator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.constraints import FixSymmetry
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS, FIRE, LBFGS

OPTIMIZERS = {"fire": FIRE, "bfgs": BFGS, "lbfgs": LBFGS}


class RelaxationError(RuntimeError):
    """A relaxation met non-finite energies, forces or stresses: the model fails on the structure.
    `structure` is its position in a batch (`relax_batch`), None for a single relaxation."""

    def __init__(self, message: str, structure: int | None = None):
        super().__init__(message)
        self.structure = structure


def check_finite(step: int, energy: float, forces: np.ndarray, stress: np.ndarray | None = None) -> None:
    """Raise `RelaxationError` naming the step when the energy, forces or stress are NaN or inf."""
    if not (np.isfinite(energy) and np.isfinite(forces).all() and (stress is None or np.isfinite(stress).all())):
        raise RelaxationError(f"step {step}: non-finite energy, forces or stress; the model fails on this "
                              f"structure (atoms too close, or far outside its training data?)")


@dataclass
class RelaxResult:
    """Outcome of one relaxation: energy eV, max |force component| eV/Å and max |stress component|
    eV/Å³ (the quantities the convergence criteria test), steps taken."""

    atoms: Atoms
    energy: float
    fmax: float
    smax: float
    steps: int
    converged: bool


def relax(atoms: Atoms, calculator, fmax: float = 0.02, smax: float = 1e-3, relax_cell: bool = True,
          optimizer: str = "fire", fix_symmetry: bool = False, max_steps: int = 500) -> RelaxResult:
    """Relax `atoms` (a copy is relaxed and returned) until forces < `fmax` eV/Å and, with
    `relax_cell` on a periodic cell, stresses < `smax` eV/Å³ (FrechetCellFilter: positions and
    cell together). `fix_symmetry` keeps the space group (ASE's FixSymmetry). Non-finite
    energies, forces or stresses stop it with `RelaxationError` naming the step."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got '{optimizer}'")
    atoms = atoms.copy()
    atoms.calc = calculator
    if fix_symmetry:
        atoms.set_constraint(FixSymmetry(atoms))
    cell = relax_cell and bool(atoms.pbc.all())
    # The filter's generalised forces mix eV/Å and stress × volume, so convergence is checked here
    # on forces and stress separately; the optimiser itself never stops early (fmax=0).
    target = FrechetCellFilter(atoms, scalar_pressure=0.0) if cell else atoms
    dynamics = OPTIMIZERS[optimizer](target, logfile=None)
    steps = -1
    converged = False
    for _ in dynamics.irun(fmax=0.0, steps=max_steps):
        steps += 1
        check_finite(steps, atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress() if cell else None)
        forces_ok = np.abs(atoms.get_forces()).max() < fmax
        stress_ok = not cell or np.abs(atoms.get_stress()).max() < smax
        if forces_ok and stress_ok:
            converged = True
            break
    forces = np.abs(atoms.get_forces()).max(initial=0.0)
    stress = float(np.abs(atoms.get_stress()).max()) if cell else float("nan")
    return RelaxResult(atoms, float(atoms.get_potential_energy()), float(forces), stress, steps, converged)
