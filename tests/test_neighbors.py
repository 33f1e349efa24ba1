"""mlip.graph.neighbor_list gives exactly ASE's edge set on random triclinic, mixed-pbc cells."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list as ase_neighbor_list
from hypothesis import given, settings
from hypothesis import strategies as st

from mlip.graph import neighbor_list


def _edge_set(i, j, shifts, distances, cutoff):
    """Edges as hashable tuples, leaving out pairs within 1e-9 Å of the cutoff (round-off ties)."""
    keep = np.abs(distances - cutoff) > 1e-9
    return {(int(a), int(b), *map(int, s)) for a, b, s in zip(i[keep], j[keep], shifts[keep])}


def _compare(positions, cell, pbc, cutoff):
    atoms = Atoms(numbers=np.ones(len(positions), dtype=int), positions=positions, cell=cell, pbc=pbc)
    ai, aj, aS, ad = ase_neighbor_list("ijSd", atoms, cutoff, self_interaction=False)
    receivers, senders, shifts = neighbor_list(positions, cell, pbc, cutoff)
    vectors = positions[senders] + shifts @ cell - positions[receivers]
    distances = np.linalg.norm(vectors, axis=1)
    assert np.all(distances < cutoff)
    assert _edge_set(receivers, senders, shifts, distances, cutoff) == _edge_set(ai, aj, aS, ad, cutoff)
    return receivers, senders, shifts


@st.composite
def random_systems(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(1, 24))
    lengths = rng.uniform(1.5, 9.0, 3)
    cell = np.diag(lengths) + rng.uniform(-0.4, 0.4, (3, 3)) * lengths[:, None]  # triclinic
    pbc = np.array(draw(st.tuples(st.booleans(), st.booleans(), st.booleans())))
    fractional = rng.uniform(-0.2, 1.2, (n, 3))  # atoms outside the cell too
    cutoff = draw(st.floats(0.8, 6.0))
    return fractional @ cell, cell, pbc, cutoff


@settings(max_examples=150, deadline=None)
@given(random_systems())
def test_edge_set_equals_ase_on_random_cells(system):
    _compare(*system)


def test_cell_much_smaller_than_cutoff_has_many_images():
    atoms = bulk("Cu", "fcc", a=3.6)  # one atom, 2.5 Å neighbour distance
    receivers, senders, shifts = _compare(atoms.positions, atoms.cell.array, atoms.pbc, 8.0)
    assert len(receivers) > 150 and np.abs(shifts).max() >= 3
    assert np.all(receivers == 0) and np.all(senders == 0)


def test_molecule_without_cell():
    rng = np.random.default_rng(1)
    positions = rng.uniform(0, 4, (15, 3))
    receivers, senders, shifts = _compare(positions, np.zeros((3, 3)), [False] * 3, 3.0)
    assert np.all(shifts == 0) and np.all(receivers != senders)


def test_edges_are_grouped_by_receiver_and_symmetric():
    atoms = bulk("Si", "diamond", a=5.43).repeat(2)
    receivers, senders, shifts = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, 4.0)
    assert np.all(np.diff(receivers) >= 0)
    forward = {(i, j, *s) for i, j, s in zip(receivers, senders, shifts)}
    assert forward == {(j, i, *(-s)) for i, j, s in zip(receivers, senders, shifts)}


def test_bad_cutoff_is_refused():
    with pytest.raises(ValueError, match="cutoff must be positive"):
        neighbor_list(np.zeros((1, 3)), np.eye(3), [True] * 3, 0.0)
