"""Opposite edges paired into bonds (`mlip.graph.edge_pairs`): radial weights once per bond, same physics."""

from __future__ import annotations

import pytest
import torch
from ase.build import bulk, molecule

from mlip.graph import GraphBatch
from mlip.graph.edge_pairs import edge_pairs
from mlip.io import Frame
from mlip.models import build_potential
from mlip.models.presets import load_preset

pytestmark = pytest.mark.usefixtures("float64_default")


def _batch(atoms_list, cutoff: float = 4.0) -> GraphBatch:
    return GraphBatch.from_frames([Frame(numbers=a.numbers, positions=a.positions, cell=a.cell.array, pbc=a.pbc)
                                   for a in atoms_list], cutoff)


def _structures():
    """A molecule, a rattled crystal and a one-atom cell far smaller than the cutoff (an atom bonded to
    its own images in many cells), in one batch."""
    crystal = bulk("Si", "diamond", a=5.43, cubic=True)
    crystal.rattle(0.05, seed=1)
    tiny = bulk("Cu", "fcc", a=3.6)
    return [molecule("CH3CH2OH"), crystal, tiny]


def test_every_edge_meets_its_opposite():
    """In a full neighbour list each bond is two edges: i → j with shift s and j → i with −s."""
    batch = _batch(_structures(), cutoff=5.0)
    representative, pair = edge_pairs(batch.receivers, batch.senders, batch.shifts, batch.numbers.shape[0])
    assert torch.equal(torch.bincount(pair), torch.full((representative.shape[0],), 2))
    assert 2 * representative.shape[0] == batch.receivers.shape[0]
    assert torch.equal(pair[representative], torch.arange(representative.shape[0]))     # a representative is in its bond
    for e in range(batch.receivers.shape[0]):
        partner = int(((pair == pair[e]) & (torch.arange(len(pair)) != e)).nonzero())
        assert batch.receivers[partner] == batch.senders[e] and batch.senders[partner] == batch.receivers[e]
        assert torch.equal(batch.shifts[partner], -batch.shifts[e])
    vectors = batch.edge_vectors()
    lengths = torch.linalg.vector_norm(vectors, dim=-1)
    assert torch.equal(lengths, lengths[representative][pair])                          # bitwise equal lengths


def test_an_edge_without_its_opposite_is_a_bond_of_its_own():
    batch = _batch([molecule("H2O")])
    keep = torch.arange(batch.receivers.shape[0]) != 0
    representative, pair = edge_pairs(batch.receivers[keep], batch.senders[keep], batch.shifts[keep], 3)
    counts = torch.bincount(pair)
    assert sorted(counts.tolist()) == [1, 2, 2]
    assert edge_pairs(batch.receivers[:0], batch.senders[:0], batch.shifts[:0], 3) is None
    # keys that would overflow int64: no pairing, the network computes every edge
    assert edge_pairs(batch.receivers, batch.senders, batch.shifts, 2**31) is None


@pytest.mark.parametrize("preset", ["equivariant_medium", "equivariant_small"])
def test_potential_is_the_same_with_and_without_pairs(preset):
    """Energies, forces and stress (float64) equal whether radial weights are computed per bond or per edge."""
    atoms = _structures()
    batch = _batch(atoms)
    torch.manual_seed(0)
    potential = build_potential(elements=[1, 6, 8, 14, 29], cutoff=4.0, dtype=torch.float64, **load_preset(preset))
    rows = []
    potential.network.blocks[0].conv.radial.register_forward_hook(lambda module, args, out: rows.append(out.shape[0]))
    paired = potential(batch, forces=True, stress=True)
    assert rows == [batch.receivers.shape[0] // 2]            # the radial network ran once per bond
    potential.network.accepts_edge_pairs = False
    per_edge = potential(batch, forces=True, stress=True)
    for key in ["energy", "forces", "stress"]:
        assert torch.allclose(paired[key], per_edge[key], rtol=1e-12, atol=1e-12, equal_nan=True), key
