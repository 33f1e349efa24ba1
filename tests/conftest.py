"""Shared fixtures: paths to shipped data and small EMT-labelled periodic structures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


def emt_structures(n: int = 6, seed: int = 0, size: int = 2):
    """Rattled, strained Cu supercells labelled by ASE's EMT (energy, forces, stress)."""
    from ase.build import bulk
    from ase.calculators.emt import EMT

    rng = np.random.default_rng(seed)
    structures = []
    for _ in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(size)
        strain = np.eye(3) + 0.02 * rng.standard_normal((3, 3))
        atoms.set_cell(atoms.cell.array @ strain, scale_atoms=True)
        atoms.positions += 0.05 * rng.standard_normal(atoms.positions.shape)
        atoms.calc = EMT()
        atoms.get_potential_energy()
        atoms.get_stress()
        structures.append(atoms)
    return structures


@pytest.fixture(scope="session")
def emt_extxyz(tmp_path_factory) -> Path:
    import ase.io

    path = tmp_path_factory.mktemp("emt") / "cu_emt.xyz"
    ase.io.write(path, emt_structures(), format="extxyz")
    return path


@pytest.fixture
def float64_default():
    """torch's default dtype float64 for one test (exact layers are checked to 1e-12), restored after."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)
