"""GraphBatch concatenates structures with correct offsets, batch/ptr vectors and edge vectors."""

from __future__ import annotations

import numpy as np
import torch

import mlip.io
from mlip.graph import GraphBatch, build_graph
from tests.conftest import emt_structures


def _frames(data_dir):
    molecules = mlip.io.read(data_dir / "acac_train_300K_100.xyz")[:2]
    crystals = [mlip.io.Frame(numbers=a.numbers, positions=a.positions, cell=a.cell.array, pbc=a.pbc,
                              energy=a.get_potential_energy(), forces=a.get_forces(), stress=a.get_stress())
                for a in emt_structures(2)]
    return molecules + crystals


def test_collate_offsets_and_vectors(data_dir):
    frames = _frames(data_dir)
    graphs = [build_graph(f, cutoff=4.0) for f in frames]
    batch = GraphBatch.collate(graphs)
    assert batch.num_graphs == 4
    assert batch.ptr.tolist() == [0, 15, 30, 62, 94]
    assert batch.num_atoms.tolist() == [15, 15, 32, 32]
    assert torch.equal(torch.bincount(batch.batch), batch.num_atoms)
    assert batch.receivers.shape == batch.senders.shape == (sum(g.n_edges for g in graphs),)
    assert torch.all(batch.batch[batch.receivers] == batch.batch[batch.senders])
    expected = np.concatenate([g.edge_vectors() for g in graphs])
    np.testing.assert_allclose(batch.edge_vectors().numpy(), expected, atol=1e-12)
    assert torch.all(batch.edge_vectors().norm(dim=1) < 4.0)


def test_missing_labels_are_nan_and_present_labels_kept(data_dir):
    batch = GraphBatch.from_frames(_frames(data_dir), cutoff=4.0)
    assert torch.isnan(batch.stress[:2]).all() and torch.isfinite(batch.stress[2:]).all()
    assert torch.isfinite(batch.energy).all() and torch.isfinite(batch.forces).all()


def test_to_casts_floats_and_keeps_indices(data_dir):
    batch = GraphBatch.from_frames(_frames(data_dir), cutoff=4.0).to(dtype=torch.float32)
    assert batch.positions.dtype == torch.float32 and batch.cell.dtype == torch.float32
    assert batch.receivers.dtype == torch.int64 and batch.numbers.dtype == torch.int64
    assert batch.edge_vectors().dtype == torch.float32
