"""Test systems for the physics checks; the checks themselves are public in `mlip.testing`."""

from __future__ import annotations

import numpy as np
import torch
from ase.build import bulk

import mlip.io
from mlip.io import Frame
from mlip.testing import (dimer_energy, evaluate, finite_difference_forces, finite_difference_stress, moved,
                          random_orthogonal)

CUTOFF = 4.0
__all__ = ["CUTOFF", "crystal", "dimer_energy", "evaluate", "finite_difference_forces", "finite_difference_stress",
           "molecule", "moved", "random_orthogonal", "as_tensor_dtype"]


def molecule(data_dir) -> Frame:
    return mlip.io.read(data_dir / "rmd17_aspirin_train200.npz")[0]


def crystal(seed: int = 0) -> Frame:
    """A strained (triclinic), rattled 2x2x2 fcc Cu cell: 32 atoms."""
    rng = np.random.default_rng(seed)
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.03 * rng.standard_normal((3, 3))), scale_atoms=True)
    atoms.positions += 0.1 * rng.standard_normal(atoms.positions.shape)
    return Frame(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell.array, pbc=atoms.pbc)


def as_tensor_dtype(potential) -> torch.dtype:
    return next(potential.buffers()).dtype
