"""The hand-fused C kernel of the tabulated convolution (`mlip.nn.tabulated_convolution`): the same neighbour
sums and first derivatives as the framework's path, in float32, for scalar and vector inputs; a fallback where
it cannot be built."""

from __future__ import annotations

import pytest
import torch
from e3nn import o3

from mlip.nn import tabulated_convolution as fused
from mlip.nn.irreps import hidden_irreps, to_channel_layout
from mlip.nn.message import EquivariantConvolution
from mlip.nn.radial import RadialSettings
from mlip.nn.radial_table import TabulatedRadial
from mlip.nn.segments import NeighbourSegments

pytestmark = pytest.mark.skipif(not fused.available(), reason="no C compiler to build the fused kernel")


def _graph(atoms: int = 12, edges: int = 70) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Receivers with uneven degrees (so the slot layout has padding), senders and edge vectors (Å)."""
    generator = torch.Generator().manual_seed(3)
    receivers = torch.randint(0, atoms, (edges,), generator=generator)
    senders = (receivers + torch.randint(1, atoms, (edges,), generator=generator)) % atoms
    vectors = 4.4 * torch.rand(edges, 3, generator=generator) - 2.2
    return receivers, senders, vectors


@pytest.mark.parametrize("lmax_in,sh_lmax,a_lmax", [(0, 3, 3), (1, 2, 2), (1, 3, 1), (2, 2, 2)])
def test_fused_kernel_gives_the_framework_sums_and_gradients(lmax_in, sh_lmax, a_lmax):
    torch.manual_seed(0)
    irreps_in, sh = hidden_irreps(8, lmax_in), o3.Irreps.spherical_harmonics(sh_lmax)
    conv = EquivariantConvolution(irreps_in, sh, a_lmax, RadialSettings(cutoff=4.0, kind="mlp"), avg_num_neighbors=5.0)
    table = TabulatedRadial.build(conv.radial.double(), 4.0)
    receivers, senders, vectors = _graph()
    segments = NeighbourSegments(receivers, 12)
    assert segments.num_nodes * segments.degree > receivers.numel()  # padding slots present
    x = irreps_in.randn(12, -1)

    def run(kernel: bool):
        features, edge_vectors = x.clone().requires_grad_(True), vectors.clone().requires_grad_(True)
        edge_sh = segments.pad(o3.spherical_harmonics(sh, edge_vectors, normalize=True, normalization="component"), 0)
        lengths, filled = segments.pad(edge_vectors.norm(dim=-1), 0), segments.pad(torch.ones(len(vectors)), 0)
        slot_senders = segments.pad(senders, 0)
        if kernel:
            blocks = conv._fused_sums(features, edge_sh, lengths, filled, slot_senders, table)
        else:
            weights = (table(lengths) * filled.unsqueeze(-1)).reshape(len(lengths), len(conv.paths), conv.channels)
            channel_major = to_channel_layout(features, conv.channels, lmax_in).transpose(1, 2)  # (N, dim_in, C)
            blocks = conv._segment_sums(weights, channel_major.index_select(0, slot_senders), edge_sh, segments)
        total = sum((b * torch.linspace(0.5, 1.5, b.numel()).reshape(b.shape)).sum() for b in blocks)
        return blocks, torch.autograd.grad(total, [features, edge_vectors])

    expected, expected_grads = run(kernel=False)
    blocks, grads = run(kernel=True)
    for a, b in zip(blocks, expected):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=0, atol=2e-6 * b.abs().max().item())
    for a, b in zip(grads, expected_grads):
        torch.testing.assert_close(a, b, rtol=0, atol=2e-6 * b.abs().max().item())


def test_fused_operator_is_registered_for_the_compiler():
    """Schema, fake shapes and autograd registration, as torch.compile uses them."""
    torch.manual_seed(0)
    conv = EquivariantConvolution(hidden_irreps(4, 1), o3.Irreps.spherical_harmonics(2), 2,
                                  RadialSettings(cutoff=4.0, kind="mlp"))
    table = TabulatedRadial.build(conv.radial.double(), 4.0)
    receivers, senders, vectors = _graph()
    segments = NeighbourSegments(receivers, 12)
    sh = segments.pad(o3.spherical_harmonics(o3.Irreps.spherical_harmonics(2), vectors, True, "component"), 0)
    lengths = segments.pad(vectors.norm(dim=-1), 0).requires_grad_(True)
    filled = segments.pad(torch.ones(len(vectors)), 0)
    features = torch.randn(12, 4, 4, requires_grad=True)
    args = (sh.requires_grad_(True), lengths, filled, table.coefficients, features, segments.pad(senders, 0),
            conv.coupling_by_run, conv.path_layout, sum(n * (2 * l3 + 1) for l3, _, n, _ in conv.groups), 4.0, 0.2)
    torch.library.opcheck(fused.tabulated_convolution, args, test_utils=("test_schema", "test_faketensor",
                                                                         "test_autograd_registration"))


def test_without_a_compiler_the_kernel_is_unavailable_and_says_why(monkeypatch, caplog):
    from mlip.nn.kernels import build

    monkeypatch.setattr(build, "compiler", lambda: None)
    fused._library.cache_clear()
    build.build.cache_clear()
    try:
        with caplog.at_level("INFO", logger="mlip.nn.kernels.build"):
            assert fused._library() is None and not fused.available()
        assert "no C compiler" in caplog.text
    finally:
        fused._library.cache_clear()
        build.build.cache_clear()
