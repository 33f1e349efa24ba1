"""The physics every architecture must obey, as reusable checks (used by tests/test_physics.py)."""

from __future__ import annotations

import numpy as np
import torch
from ase.build import bulk

import mlip.io
from mlip.graph import GraphBatch
from mlip.io import Frame

CUTOFF = 4.0


def molecule(data_dir) -> Frame:
    return mlip.io.read(data_dir / "rmd17_aspirin_train200.npz")[0]


def crystal(seed: int = 0) -> Frame:
    """A strained (triclinic), rattled 2x2x2 fcc Cu cell: 32 atoms."""
    rng = np.random.default_rng(seed)
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.03 * rng.standard_normal((3, 3))), scale_atoms=True)
    atoms.positions += 0.1 * rng.standard_normal(atoms.positions.shape)
    return Frame(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell.array, pbc=atoms.pbc)


def moved(frame: Frame, positions=None, cell=None, numbers=None) -> Frame:
    return Frame(numbers=frame.numbers if numbers is None else numbers,
                 positions=frame.positions if positions is None else positions,
                 cell=frame.cell if cell is None else cell, pbc=frame.pbc)


def evaluate(potential, frames, forces=True, stress=True) -> dict[str, np.ndarray]:
    batch = GraphBatch.from_frames(frames if isinstance(frames, list) else [frames], potential.cutoff)
    out = potential(batch, forces=forces, stress=stress)
    return {k: v.detach().cpu().numpy() for k, v in out.items()}


def random_orthogonal(seed: int, reflect: bool) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if (np.linalg.det(q) < 0) != reflect:
        q[:, 0] *= -1
    return q


def finite_difference_forces(potential, frame: Frame, atoms: list[int], h: float = 1e-4) -> np.ndarray:
    result = np.zeros((len(atoms), 3))
    for a, i in enumerate(atoms):
        for k in range(3):
            energies = []
            for sign in (1, -1):
                positions = frame.positions.copy()
                positions[i, k] += sign * h
                energies.append(evaluate(potential, moved(frame, positions), False, False)["energy"][0])
            result[a, k] = -(energies[0] - energies[1]) / (2 * h)
    return result


def finite_difference_stress(potential, frame: Frame, h: float = 1e-4) -> np.ndarray:
    volume = abs(np.linalg.det(frame.cell))
    result = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            energies = []
            for sign in (1, -1):  # symmetric strain: also right for models that are not rotation invariant
                deformation = np.eye(3)
                deformation[a, b] += sign * h / 2
                deformation[b, a] += sign * h / 2
                energies.append(evaluate(potential, moved(frame, frame.positions @ deformation,
                                                          frame.cell @ deformation), False, False)["energy"][0])
            result[a, b] = (energies[0] - energies[1]) / (2 * h) / volume
    return result


def dimer_energy(potential, z: int, distance: float) -> tuple[float, float]:
    """Energy and force on atom 1 along the bond of a dimer at `distance` Å."""
    frame = Frame(numbers=np.array([z, z]), positions=np.array([[0.0, 0.0, 0.0], [distance, 0.0, 0.0]]))
    out = evaluate(potential, frame, True, False)
    return float(out["energy"][0]), float(out["forces"][1, 0])


def as_tensor_dtype(potential) -> torch.dtype:
    return next(potential.buffers()).dtype
