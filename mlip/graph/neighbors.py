"""Periodic neighbour lists, backed by vesin's compiled cell-list code (linear in atoms).

Why vesin: in `benchmarks/neighbor_lists.py` (i, j and shifts from vesin, matscipy and
ASE), vesin was the fastest from 512 atoms up (about 2x matscipy, 10x ASE on one core),
handles triclinic cells, mixed periodicity, molecules without a cell and cells smaller than
the cutoff, and ships wheels with no dependency but NumPy (matscipy needs a cell even for
molecules). See the README's "Design" section for the measured table.
"""

from __future__ import annotations

import math

import numpy as np
import vesin

# Bounds on the work a neighbour search may be asked for, checked before it starts (issue 13):
# a cell whose height is a sliver of the cutoff needs that many periodic images, and a molecule
# spread over kilometres needs a cell list with astronomically many bins; both are broken inputs.
MAX_IMAGES_PER_DIRECTION = 50
MAX_SEARCH_BINS = 10**8


class NeighborSearchTooLarge(ValueError):
    """The structure would make the neighbour search explode (tiny cell height, vast extent)."""


def search_size_problem(positions: np.ndarray, cell: np.ndarray, pbc, cutoff: float) -> str | None:
    """Why a neighbour search of this structure must not run, or None when it may.

    Periodic directions: the height of the cell along each periodic lattice vector (distance
    between the lattice planes of the other periodic vectors) must be at least
    cutoff / `MAX_IMAGES_PER_DIRECTION`. Without periodicity: the atoms' bounding box must hold
    at most `MAX_SEARCH_BINS` cutoff-sized bins.
    """
    periodic = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    if periodic.any():
        vectors = np.asarray(cell, dtype=np.float64)[periodic]
        measure = math.sqrt(max(float(np.linalg.det(vectors @ vectors.T)), 0.0))
        for k, axis in enumerate(np.flatnonzero(periodic)):
            others = np.delete(vectors, k, axis=0)
            base = math.sqrt(max(float(np.linalg.det(others @ others.T)), 0.0)) if len(others) else 1.0
            height = measure / base if base > 0 else 0.0
            if height * MAX_IMAGES_PER_DIRECTION < cutoff:
                return (f"cell height {height:.3g} Å along lattice vector {int(axis)} is tiny against the cutoff "
                        f"{cutoff:g} Å (it would take {'over a million' if height == 0 else math.ceil(cutoff / height)} "
                        f"periodic images; at most {MAX_IMAGES_PER_DIRECTION} allowed): a degenerate cell?")
        return None
    if len(positions) < 2:
        return None
    extent = np.ptp(np.asarray(positions, dtype=np.float64), axis=0)
    bins = float(np.prod(np.maximum(np.ceil(extent / cutoff), 1.0)))
    if not bins <= MAX_SEARCH_BINS:
        return (f"atoms are spread over {extent.max():.3g} Å without periodicity, too far apart for a neighbour search "
                f"({bins:.3g} bins of the cutoff, at most {MAX_SEARCH_BINS:.0e}): wrong units or a stray atom?")
    return None


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

    Raises:
        NeighborSearchTooLarge: when `search_size_problem` finds the search would explode.
    """
    if not cutoff > 0:
        raise ValueError(f"cutoff must be positive, got {cutoff}")
    problem = search_size_problem(positions, cell, pbc, cutoff)
    if problem is not None:
        raise NeighborSearchTooLarge(problem)
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
