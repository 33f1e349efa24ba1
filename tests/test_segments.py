"""Neighbour sums as per-atom matrix products (`NeighbourSegments`) equal the scatter sums they replace."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

from mlip.graph import GraphBatch
from mlip.io import Frame
from mlip.models import build_potential
from mlip.models.presets import load_preset
from mlip.nn import segments as segments_module
from mlip.nn.irreps import hidden_irreps
from mlip.nn.message import EquivariantConvolution
from mlip.nn.radial import RadialSettings
from mlip.nn.segments import NeighbourSegments
from e3nn import o3

pytestmark = pytest.mark.usefixtures("float64_default")


def _random_graph(n_nodes: int = 12, n_edges: int = 50, seed: int = 0):
    """Unsorted receivers, uneven degrees, one atom without neighbours (node n_nodes − 1)."""
    generator = torch.Generator().manual_seed(seed)
    receivers = torch.randint(0, n_nodes - 1, (n_edges,), generator=generator)
    senders = torch.randint(0, n_nodes, (n_edges,), generator=generator)
    return receivers, senders


def test_slots_place_every_edge_in_its_receivers_row_once():
    receivers, _ = _random_graph()
    segments = NeighbourSegments(receivers, 12)
    counts = torch.bincount(receivers, minlength=12)
    assert segments.degree == int(counts.max())
    assert len(set(segments.slots.tolist())) == len(receivers)                 # no two edges share a slot
    assert torch.equal(segments.slots // segments.degree, receivers)           # each in its receiver's row
    # ranks within a row follow the edge order (stable)
    for node in range(12):
        ranks = (segments.slots[receivers == node] % segments.degree).tolist()
        assert ranks == list(range(len(ranks)))


def test_neighbour_sum_equals_the_scatter_sum():
    receivers, _ = _random_graph()
    left, right = torch.randn(3, 50, 2, 5), torch.randn(3, 50, 2, 7)
    segments = NeighbourSegments(receivers, 12)
    got = segments.neighbour_sum(segments.pad(left, 1), segments.pad(right, 1))  # (3, 12, 5, 7)
    outer = torch.einsum("pekw,pekc->pewc", left, right)
    expected = torch.zeros(3, 12, 5, 7).index_add_(1, receivers, outer)
    assert torch.allclose(got, expected, atol=1e-12)
    assert torch.equal(got[:, 11], torch.zeros(3, 5, 7))                       # the atom without neighbours


def test_fused_neighbour_sum_equals_the_matrix_product_eagerly_and_compiled():
    """The compiled graphs' form (one broadcast product summed over slots and k) gives the same sums and
    gradients as the matrix product of the eager path."""
    receivers, _ = _random_graph()
    segments = NeighbourSegments(receivers, 12)
    left, weight, component = (torch.randn(*shape, requires_grad=True) for shape in [(3, 50, 2, 5), (3, 50, 7), (50, 2, 7)])
    padded = [segments.pad(left, 1), segments.pad(weight, 1), segments.pad(component, 0)]
    expected = segments.neighbour_sum(padded[0], padded[1][:, :, None, :] * padded[2])
    probe = torch.randn_like(expected)
    wanted = torch.autograd.grad((expected * probe).sum(), [left, weight, component])
    fused = torch.compile(segments.fused_neighbour_sum, backend="aot_eager", fullgraph=True)
    for function in (segments.fused_neighbour_sum, fused):
        padded = [segments.pad(left, 1), segments.pad(weight, 1), segments.pad(component, 0)]
        got = function(*padded)
        assert torch.allclose(got, expected, atol=1e-12)
        grads = torch.autograd.grad((got * probe).sum(), [left, weight, component])
        assert all(torch.allclose(grad, want, atol=1e-12) for grad, want in zip(grads, wanted))


def test_edges_already_in_the_layout_are_not_copied():
    """Edges grouped by receiver with one degree everywhere (a one-site crystal) are the layout itself."""
    receivers = torch.arange(6).repeat_interleave(4)
    segments = NeighbourSegments(receivers, 6)
    x = torch.randn(24, 3)
    assert segments.identity and segments.pad(x, 0) is x
    assert not NeighbourSegments(receivers.flip(0), 6).identity                # same degrees, other order
    assert not NeighbourSegments(receivers[1:], 6).identity                    # one atom with fewer


def test_layout_is_refused_where_it_does_not_pay():
    receivers = torch.cat([torch.zeros(40, dtype=torch.long), torch.arange(1, 30)])  # one atom with 40 neighbours
    assert NeighbourSegments.build(receivers, 30) is None                      # 30 × 40 slots for 69 edges
    assert NeighbourSegments.build(torch.zeros(0, dtype=torch.long), 5) is None
    assert NeighbourSegments.build(torch.arange(10) % 5, 5) is not None


def test_compiled_layout_rounds_the_degree_up_and_gives_the_same_sums():
    """The layout a compiled network receives: degree rounded up to a bucket and marked static (one
    graph per bucket, the degree a constant in it), the sums unchanged by the extra empty slots."""
    receivers, _ = _random_graph()
    degree = int(torch.bincount(receivers).max())
    slots, marker = NeighbourSegments.compiled_layout(receivers, 12)
    assert marker.shape[0] % segments_module.COMPILED_DEGREE_STEP == 0 and degree <= marker.shape[0] < degree + 8
    assert 0 in marker._dynamo_static_indices
    segments = NeighbourSegments.from_compiled_layout((slots, marker), 12)
    assert not segments.identity and torch.equal(slots // marker.shape[0], receivers)
    left, right = torch.randn(2, 50, 3, 4), torch.randn(2, 50, 3, 5)
    expected = NeighbourSegments(receivers, 12)
    torch.testing.assert_close(segments.neighbour_sum(segments.pad(left, 1), segments.pad(right, 1)),
                               expected.neighbour_sum(expected.pad(left, 1), expected.pad(right, 1)), rtol=0, atol=1e-12)
    assert NeighbourSegments.compiled_layout(torch.zeros(0, dtype=torch.long), 5) is None


def test_growing_compiled_layout_keeps_the_largest_degree_and_the_same_sums():
    """Batches after a denser one are laid out at its degree (one compiled graph, not one per bucket),
    with unchanged sums; where that padding would not pay, the batch keeps its own bucket."""
    layout = segments_module.GrowingCompiledLayout()
    dense = torch.arange(12).repeat_interleave(20)                               # 12 atoms × 20 neighbours
    assert layout(dense, 12)[1].shape[0] == 24 and layout.degree == 24
    receivers = torch.arange(12).repeat_interleave(12)[torch.randperm(144, generator=torch.Generator().manual_seed(0))]
    receivers = receivers[:140]                                                  # uneven, ≤ 12 neighbours: bucket 16
    slots, marker = layout(receivers, 12)
    assert marker.shape[0] == 24 and 0 in marker._dynamo_static_indices
    segments, expected = NeighbourSegments.from_compiled_layout((slots, marker), 12), NeighbourSegments(receivers, 12)
    left, right = torch.randn(2, 140, 3, 4), torch.randn(2, 140, 3, 5)
    torch.testing.assert_close(segments.neighbour_sum(segments.pad(left, 1), segments.pad(right, 1)),
                               expected.neighbour_sum(expected.pad(left, 1), expected.pad(right, 1)), rtol=0, atol=1e-12)
    sparse = torch.arange(40).repeat_interleave(6)                               # 40 atoms, 6 neighbours each
    assert layout(sparse, 40)[1].shape[0] == 8 and layout.degree == 24          # 40 × 24 slots for 240 edges: own bucket


@pytest.mark.parametrize("lmax_in,sh_lmax,a_lmax", [(0, 3, 3), (1, 2, 2), (1, 3, 1), (2, 2, 2)])
def test_convolution_gives_the_same_sums_and_gradients_both_ways(lmax_in, sh_lmax, a_lmax):
    torch.manual_seed(0)
    irreps_in, sh = hidden_irreps(4, lmax_in), o3.Irreps.spherical_harmonics(sh_lmax)
    conv = EquivariantConvolution(irreps_in, sh, a_lmax, RadialSettings(cutoff=4.0, kind="mlp"), avg_num_neighbors=3.0)
    receivers, senders = _random_graph()
    vectors = (3 * torch.rand(50, 3) - 1.5).requires_grad_(True)
    x = irreps_in.randn(12, -1).requires_grad_(True)

    def run(segments):
        edge_sh = o3.spherical_harmonics(sh, vectors, normalize=True, normalization="component")
        edge_senders = senders
        if segments is not None:  # as the network passes them: harmonics and senders in the slot layout
            edge_sh, edge_senders = segments.pad(edge_sh, 0), segments.pad(senders, 0)
        blocks = conv(x, edge_sh, vectors.norm(dim=-1), receivers, edge_senders, segments)
        total = sum((b * torch.linspace(0.5, 1.5, b.numel()).reshape(b.shape)).sum() for b in blocks)
        return blocks, torch.autograd.grad(total, [x, vectors])

    scattered, scattered_grads = run(None)
    laid_out, laid_out_grads = run(NeighbourSegments(receivers, 12))
    for a, b in zip(scattered, laid_out):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-12)
    for a, b in zip(scattered_grads, laid_out_grads):
        assert torch.allclose(a, b, atol=1e-11)


@pytest.mark.parametrize("frames", ["molecule", "crystals", "perfect_crystal"])
def test_network_energies_forces_and_stress_equal_both_ways(frames):
    """A whole potential (float64): the per-atom layout changes no energy, force or stress, for a molecule
    with uneven degrees, a batch of two crystals (one strained and rattled) and a perfect crystal (whose
    edges are the layout already)."""
    if frames == "molecule":
        atoms = [molecule("CH3CH2OH")]
    elif frames == "perfect_crystal":
        atoms = [bulk("Si", "diamond", a=5.43, cubic=True)]
    else:
        first = bulk("Si", "diamond", a=5.43, cubic=True)
        second = bulk("Si", "diamond", a=5.5).repeat((2, 2, 2))
        second.rattle(0.05, seed=1)
        atoms = [first, second]
    batch = GraphBatch.from_frames([Frame(numbers=a.numbers, positions=a.positions, cell=a.cell.array, pbc=a.pbc)
                                    for a in atoms], 4.0)
    elements = sorted({int(z) for a in atoms for z in a.numbers})
    torch.manual_seed(0)
    potential = build_potential(elements=elements, cutoff=4.0, dtype=torch.float64, **load_preset("equivariant_medium"))
    stress = frames != "molecule"
    if frames == "perfect_crystal":
        assert NeighbourSegments.build(batch.receivers, 8).identity
    potential.network.segment_sums = False
    scattered = potential(batch, forces=True, stress=stress)
    potential.network.segment_sums = True
    laid_out = potential(batch, forces=True, stress=stress)
    for key in ["energy", "forces"] + (["stress"] if stress else []):
        assert torch.allclose(scattered[key], laid_out[key], rtol=1e-12, atol=1e-12), key


def test_padding_limit_falls_back_to_the_scatter_sum(monkeypatch):
    """Past MAX_PADDING the network takes the scatter path and the energy stays the same."""
    atoms = molecule("CH3CH2OH")
    batch = GraphBatch.from_frames([Frame(numbers=atoms.numbers, positions=atoms.positions)], 4.0)
    torch.manual_seed(0)
    potential = build_potential(elements=[1, 6, 8], cutoff=4.0, dtype=torch.float64, **load_preset("equivariant_medium"))
    reference = potential(batch, forces=False)["energy"]
    built = []
    original = NeighbourSegments.build.__func__

    def recording(cls, receivers, num_nodes):
        built.append(original(cls, receivers, num_nodes))
        return built[-1]

    monkeypatch.setattr(segments_module, "MAX_PADDING", 0.0)
    monkeypatch.setattr(NeighbourSegments, "build", classmethod(recording))
    assert torch.allclose(potential(batch, forces=False)["energy"], reference, atol=1e-12)
    assert built == [None]
    assert np.isfinite(reference.item())
