"""Periodic neighbour lists, backed by vesin's compiled cell-list code (linear in atoms).

Why vesin: in `benchmarks/neighbor_lists.py` (i, j and shifts from vesin, matscipy and
ASE), vesin was the fastest from 512 atoms up (about 2x matscipy, 10x ASE on one core),
handles triclinic cells, mixed periodicity, molecules without a cell and cells smaller than
the cutoff, and ships wheels with no dependency but NumPy (matscipy needs a cell even for
molecules). See the README's "Design" section for the measured table.
"""

from __future__ import annotations

import numpy as np
import vesin


def neighbor_list(
    positions: np.ndarray,
    cell: np.ndarray,
    pbc: np.ndarray | tuple[bool, bool, bool],
    cutoff: float,
    n_threads: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All ordered pairs (i, j) closer than `cutoff`, including periodic images.

    The vector from receiver i to sender j is ``positions[j] + shifts @ cell - positions[i]``.
    An atom is never its own neighbour through a zero shift, but may be through a non-zero one
    (cells smaller than the cutoff). Pairs are grouped by receiver (ascending); within a
    receiver their order is vesin's, deterministic for `n_threads=1`.

    Args:
        positions: (N, 3) Cartesian positions, Å.
        cell: (3, 3) lattice vectors as rows, Å; ignored along non-periodic directions.
        pbc: (3,) periodicity of each lattice vector.
        cutoff: radius, Å (strictly positive).
        n_threads: threads for vesin (1 inside worker processes; 0 lets vesin choose).

    Returns:
        receivers (E,) int64, senders (E,) int64, shifts (E, 3) int32.
    """
    if not cutoff > 0:
        raise ValueError(f"cutoff must be positive, got {cutoff}")
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    periodic = [bool(p) for p in np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))]
    box = np.ascontiguousarray(cell, dtype=np.float64) if any(periodic) else np.zeros((3, 3))
    if len(positions) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), np.zeros((0, 3), dtype=np.int32)
    calculator = vesin.NeighborList(cutoff=float(cutoff), full_list=True, n_threads=n_threads)
    receivers, senders, shifts = calculator.compute(positions, box, periodic, "ijS")
    # vesin gives uint64 indices (< 2**63, so viewing them as int64 is exact) and int32 shifts.
    receivers, senders = receivers.view(np.int64), senders.view(np.int64)
    order = np.argsort(receivers, kind="stable")
    return receivers[order], senders[order], shifts[order]
