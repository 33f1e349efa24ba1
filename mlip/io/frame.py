"""`Frame`: one labelled structure, the record every reader produces."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from mlip.io.errors import InvalidStructureError

MAX_Z = 118


@dataclass
class Frame:
    """One atomic structure with optional DFT labels, in eV and Å.

    Attributes:
        numbers: (N,) int atomic numbers.
        positions: (N, 3) float64 Cartesian positions, Å.
        cell: (3, 3) float64 lattice vectors as rows, Å (zeros for a molecule).
        pbc: (3,) bool periodicity along each lattice vector.
        energy: total energy, eV, or None.
        forces: (N, 3) forces, eV/Å, or None.
        stress: (3, 3) stress, eV/Å³, ASE sign convention (positive = tensile), or None.
        weight: per-frame loss weight.
        source: file the frame came from; index: its position in that file.
        config_type: the file's label of the kind of structure (extxyz `config_type`), or None;
            "IsolatedAtom" marks isolated-atom reference energies (MACE's convention).
    """

    numbers: np.ndarray
    positions: np.ndarray
    cell: np.ndarray = field(default_factory=lambda: np.zeros((3, 3)))
    pbc: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=bool))
    energy: float | None = None
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    weight: float = 1.0
    source: str | None = None
    index: int | None = None
    config_type: str | None = None

    def __post_init__(self) -> None:
        self.numbers = np.asarray(self.numbers)
        self.positions = self.numeric("positions", self.positions)
        self.cell = self.numeric("cell", self.cell)
        try:
            self.pbc = np.broadcast_to(np.asarray(self.pbc, dtype=bool), (3,)).copy()
        except ValueError:
            raise self.fail(f"pbc must be 3 booleans, got {self.pbc!r:.60}") from None
        if self.forces is not None:
            self.forces = self.numeric("forces", self.forces)
        if self.stress is not None:
            self.stress = _stress_to_matrix(self.numeric("stress", self.stress), self)
        if self.energy is not None:
            energy = self.numeric("energy", self.energy)
            if energy.size != 1:
                raise self.fail(f"energy must be one number, got shape {energy.shape}")
            self.energy = float(energy.reshape(-1)[0])

    def numeric(self, name: str, value) -> np.ndarray:
        """`value` as a float64 array, or an `InvalidStructureError` naming the label (text, ragged lists)."""
        try:
            return np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise self.fail(f"{name} must be numbers, got {value!r:.60}") from None

    @property
    def is_isolated_atom(self) -> bool:
        """One atom, not periodic, marked config_type IsolatedAtom (any case, `_`/`-` ignored)."""
        kind = (self.config_type or "").lower().replace("_", "").replace("-", "")
        return kind == "isolatedatom" and self.n_atoms == 1 and not self.pbc.any()

    @property
    def n_atoms(self) -> int:
        return int(self.numbers.shape[0])

    def with_labels(self, **labels) -> "Frame":
        """A copy with some fields replaced."""
        return replace(self, **labels)

    def to_atoms(self):
        """An `ase.Atoms` with the same structure (labels are not attached; `config_type` is, where set)."""
        from ase import Atoms

        atoms = Atoms(numbers=self.numbers, positions=self.positions, cell=self.cell, pbc=self.pbc)
        atoms.info.update(source=self.source or "", source_index=-1 if self.index is None else self.index)
        if self.config_type is not None:
            atoms.info["config_type"] = self.config_type
        return atoms

    def fail(self, problem: str) -> InvalidStructureError:
        """An `InvalidStructureError` that names this frame's file and index."""
        return InvalidStructureError(problem, self.source, self.index)

    def validate(self) -> "Frame":
        """Check shapes, finiteness, element numbers and the cell; raise `InvalidStructureError`."""
        n = self.numbers.shape[0] if self.numbers.ndim == 1 else -1
        if self.numbers.ndim != 1 or n == 0:
            raise self.fail(f"atomic numbers must be a non-empty 1-D array, got shape {self.numbers.shape}")
        if not np.issubdtype(self.numbers.dtype, np.integer):
            raise self.fail(f"atomic numbers must be integers, got dtype {self.numbers.dtype}")
        bad = (self.numbers < 1) | (self.numbers > MAX_Z)
        if bad.any():
            raise self.fail(f"unknown element: atomic number {int(self.numbers[bad][0])} at atom {int(np.argmax(bad))}")
        if self.positions.shape != (n, 3):
            raise self.fail(f"positions must have shape ({n}, 3), got {self.positions.shape}")
        _check_finite(self, "positions", self.positions)
        if self.cell.shape != (3, 3):
            raise self.fail(f"cell must have shape (3, 3), got {self.cell.shape}")
        _check_finite(self, "cell", self.cell)
        _check_periodic_cell(self)
        if self.energy is not None and not np.isfinite(self.energy):
            raise self.fail(f"energy is not finite ({self.energy})")
        if self.forces is not None:
            if self.forces.shape != (n, 3):
                raise self.fail(f"forces must have shape ({n}, 3) for {n} atoms, got {self.forces.shape}")
            _check_finite(self, "forces", self.forces)
        if self.stress is not None:
            _check_finite(self, "stress", self.stress)
        if not np.isfinite(self.weight) or self.weight < 0:
            raise self.fail(f"weight must be finite and non-negative, got {self.weight}")
        return self


def _check_finite(frame: Frame, name: str, array: np.ndarray) -> None:
    if not np.all(np.isfinite(array)):
        where = np.argwhere(~np.isfinite(array))[0]
        raise frame.fail(f"{name} contain NaN or inf (first at index {tuple(int(i) for i in where)})")


def _check_periodic_cell(frame: Frame) -> None:
    """Periodic lattice vectors must span a non-degenerate lattice (volume, area or length > 0)."""
    if not frame.pbc.any():
        return
    vectors = frame.cell[frame.pbc]
    gram = vectors @ vectors.T
    measure = float(np.sqrt(max(np.linalg.det(gram), 0.0)))
    if measure < 1e-6:
        kind = {3: "volume", 2: "area", 1: "length"}[len(vectors)]
        raise frame.fail(f"cell has zero {kind} along its periodic directions (pbc={frame.pbc.tolist()})")


def _stress_to_matrix(stress: np.ndarray, frame: Frame) -> np.ndarray:
    """Accept a (3, 3) tensor, a 9-vector or a 6-vector in Voigt order xx yy zz yz xz xy."""
    if stress.shape == (3, 3):
        return stress
    if stress.shape == (9,):
        return stress.reshape(3, 3)
    if stress.shape == (6,):
        xx, yy, zz, yz, xz, xy = stress
        return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    raise InvalidStructureError(f"stress must have shape (3, 3), (9,) or (6,), got {stress.shape}", frame.source, frame.index)
