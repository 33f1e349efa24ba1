"""A neighbour list kept between calls with a skin (Verlet list), and ASE Atoms → graph with it."""

from __future__ import annotations

import numpy as np

from mlip.graph.atomic_graph import AtomicGraph
from mlip.graph.neighbors import neighbor_list


class VerletNeighborList:
    """Pairs within cutoff + skin, rebuilt only when needed; `edges` filters them to the cutoff.

    Rebuilt when the atomic numbers, periodicity or cell change, or when any atom has moved
    more than skin / 2 since the last build (then no pair can have entered the cutoff unseen).
    """

    def __init__(self, cutoff: float, skin: float = 0.5):
        if skin < 0:
            raise ValueError(f"skin must be >= 0, got {skin}")
        self.cutoff, self.skin = float(cutoff), float(skin)
        self.builds = 0
        self._key: tuple | None = None
        self._positions: np.ndarray | None = None
        self._pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def _stale(self, positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, numbers: np.ndarray) -> bool:
        key = (numbers.tobytes(), cell.tobytes(), pbc.tobytes(), len(positions))
        if key != self._key or self._positions is None:
            self._key = key
            return True
        moved = np.linalg.norm(positions - self._positions, axis=1).max(initial=0.0)
        return bool(moved > 0.5 * self.skin)

    def edges(self, positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray,
              numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(receivers, senders, shifts) of the pairs closer than the cutoff at these positions."""
        if self._stale(positions, cell, pbc, numbers):
            self._pairs = neighbor_list(positions, cell, pbc, self.cutoff + self.skin)
            self._positions = positions.copy()
            self.builds += 1
        receivers, senders, shifts = self._pairs
        if self.skin == 0:
            return receivers, senders, shifts
        vectors = positions[senders] + shifts @ cell - positions[receivers]
        keep = np.einsum("ij,ij->i", vectors, vectors) < self.cutoff**2
        return receivers[keep], senders[keep], shifts[keep]


def graph_from_atoms(atoms, neighbors: VerletNeighborList) -> AtomicGraph:
    """The `AtomicGraph` of an ASE `Atoms` (positions Å, cell rows Å, pbc) with edges from a kept
    Verlet list: the one conversion used by the calculator and the batched relaxer."""
    positions, cell = atoms.get_positions(), atoms.cell.array
    receivers, senders, shifts = neighbors.edges(positions, cell, atoms.pbc, atoms.numbers)
    return AtomicGraph(numbers=atoms.numbers.astype(np.int64), positions=positions, cell=cell, pbc=atoms.pbc,
                       receivers=receivers, senders=senders, shifts=shifts)
