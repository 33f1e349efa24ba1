"""`AtomicGraph`: one structure with its neighbour graph and labels, as NumPy arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlip.graph.neighbors import NeighborSearchTooLarge, neighbor_list
from mlip.io.errors import InvalidStructureError
from mlip.io.frame import Frame

NAN33 = np.full((3, 3), np.nan)


@dataclass
class AtomicGraph:
    """A structure and its neighbour graph; missing labels are NaN.

    Shapes: numbers (N,), positions (N, 3) Å, cell (3, 3) Å, pbc (3,), receivers/senders (E,),
    shifts (E, 3) integer cell offsets, energy () eV, forces (N, 3) eV/Å, stress (3, 3) eV/Å³.
    """

    numbers: np.ndarray
    positions: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray
    receivers: np.ndarray
    senders: np.ndarray
    shifts: np.ndarray
    energy: float = float("nan")
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    weight: float = 1.0

    def __post_init__(self) -> None:
        n = len(self.numbers)
        if self.forces is None:
            self.forces = np.full((n, 3), np.nan)
        if self.stress is None:
            self.stress = NAN33.copy()

    @property
    def n_atoms(self) -> int:
        return int(len(self.numbers))

    @property
    def n_edges(self) -> int:
        return int(len(self.receivers))

    def edge_vectors(self) -> np.ndarray:
        """(E, 3) vectors from receiver to sender, Å."""
        return self.positions[self.senders] + self.shifts @ self.cell - self.positions[self.receivers]


def build_graph(frame: Frame, cutoff: float, min_distance: float | None = 0.1, n_threads: int = 1) -> AtomicGraph:
    """Neighbour graph of a frame within `cutoff` Å.

    Raises `InvalidStructureError` (naming file and frame) when two atoms, or an atom and an
    image, are closer than `min_distance` Å: such a structure is almost always a broken input.
    """
    try:
        receivers, senders, shifts = neighbor_list(frame.positions, frame.cell, frame.pbc, cutoff, n_threads)
    except NeighborSearchTooLarge as exc:
        raise frame.fail(str(exc)) from None
    graph = AtomicGraph(
        numbers=frame.numbers.astype(np.int64),
        positions=frame.positions,
        cell=frame.cell,
        pbc=frame.pbc,
        receivers=receivers,
        senders=senders,
        shifts=shifts,
        energy=float("nan") if frame.energy is None else frame.energy,
        forces=frame.forces,
        stress=frame.stress,
        weight=frame.weight,
    )
    if min_distance and graph.n_edges:
        lengths = np.linalg.norm(graph.edge_vectors(), axis=1)
        k = int(np.argmin(lengths))
        if lengths[k] < min_distance:
            raise frame.fail(
                f"atoms {receivers[k]} and {senders[k]} are {lengths[k]:.3f} Å apart "
                f"(closer than {min_distance} Å; overlapping atoms or wrong units?)"
            )
    return graph


__all__ = ["AtomicGraph", "build_graph", "InvalidStructureError"]
