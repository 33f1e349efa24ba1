"""The equivariant layers one by one: exact layers exact in float64, the sphere-grid layer's error measured."""

from __future__ import annotations

import pytest
import torch
from e3nn import o3

from mlip.nn.irreps import groups_to_block_layout, hidden_irreps, to_block_layout, to_channel_layout
from mlip.nn.linear import PathLinear
from mlip.nn.message import EquivariantConvolution
from mlip.nn.radial import RadialSettings
from mlip.nn.product import ProductBasis
from mlip.nn.sphere_grid import SphereGridActivation


pytestmark = pytest.mark.usefixtures("float64_default")


def relative_equivariance_error(layer, irreps_in: o3.Irreps, irreps_out: o3.Irreps, *extra, seeds: int = 4) -> float:
    """max over random rotations/reflections g of |f(D_in(g) x) − D_out(g) f(x)| / |f(x)|."""
    torch.manual_seed(0)
    x = irreps_in.randn(20, -1)
    worst = 0.0
    for seed in range(seeds):
        torch.manual_seed(seed)
        rotation = o3.rand_matrix() * (-1 if seed % 2 else 1)
        moved = layer(x @ irreps_in.D_from_matrix(rotation).T, *extra)
        expected = layer(x, *extra) @ irreps_out.D_from_matrix(rotation).T
        worst = max(worst, float((moved - expected).detach().norm() / expected.detach().norm()))
    return worst


@pytest.mark.parametrize("a_lmax,lmax,species", [(1, 1, False), (3, 1, True), (3, 0, True), (2, 2, False)])
def test_product_basis_is_exactly_equivariant(a_lmax, lmax, species):
    irreps_in, irreps_out = hidden_irreps(4, a_lmax), hidden_irreps(4, lmax)
    torch.manual_seed(0)
    product = ProductBasis(4, a_lmax, lmax, 3, num_species=3, species_weights=species)
    onehot = torch.nn.functional.one_hot(torch.randint(0, 3, (20,)), 3).double()

    def layer(x, species):  # e3nn block layout in and out
        out = product(to_channel_layout(x, 4, a_lmax), species)
        return to_block_layout(out, list(range(lmax + 1)))

    assert relative_equivariance_error(layer, irreps_in, irreps_out, onehot) < 1e-12


@pytest.mark.parametrize("symmetric", [True, False])
def test_sparse_channelwise_product_equals_the_dense_clebsch_gordan_contraction(symmetric):
    from mlip.nn.irreps import coupling_paths, coupling_tensor
    from mlip.nn.product import ChannelwiseProduct

    torch.manual_seed(0)
    product = ChannelwiseProduct(4, 3, 3, 2, symmetric=symmetric)
    coupling, _ = coupling_tensor(coupling_paths(3, 3, 2, symmetric), 3, 3)
    x = torch.randn(5, 4, 16, dtype=torch.float64)
    y = x if symmetric else torch.randn(5, 4, 16, dtype=torch.float64)
    dense = torch.einsum("nci,ncj,ijk->knc", x, y, coupling)  # every term, the swapped ones included
    assert torch.allclose(product.contract(x, y), dense.reshape(dense.shape[0], -1), atol=1e-13, rtol=0)


def test_species_weights_make_the_product_depend_on_the_element():
    product = ProductBasis(4, 3, 1, 3, num_species=2, species_weights=True)
    a = to_channel_layout(hidden_irreps(4, 3).randn(1, -1), 4, 3)
    first, second = (product(a, torch.tensor([[1.0, 0.0]])), product(a, torch.tensor([[0.0, 1.0]])))
    assert not torch.allclose(first, second)


@pytest.mark.parametrize("lmax_in,sh_lmax,a_lmax", [(0, 3, 3), (1, 3, 3), (1, 3, 1), (2, 2, 2)])
def test_fused_convolution_is_exactly_equivariant(lmax_in, sh_lmax, a_lmax):
    torch.manual_seed(0)
    irreps_in, sh = hidden_irreps(4, lmax_in), o3.Irreps.spherical_harmonics(sh_lmax)
    conv = EquivariantConvolution(irreps_in, sh, a_lmax, RadialSettings(cutoff=4.0))
    vectors = 3 * torch.rand(30, 3) - 1.5
    receivers, senders = torch.randint(0, 20, (30,)), torch.randint(0, 20, (30,))

    def layer(x, rotation=None):
        v = vectors if rotation is None else vectors @ rotation.T
        edge_sh = o3.spherical_harmonics(sh, v, normalize=True, normalization="component")
        return groups_to_block_layout(conv(x, edge_sh, v.norm(dim=-1), receivers, senders))

    x = irreps_in.randn(20, -1)
    for seed in range(4):
        torch.manual_seed(seed)
        rotation = o3.rand_matrix() * (-1 if seed % 2 else 1)
        moved = layer(x @ irreps_in.D_from_matrix(rotation).T, rotation)
        expected = layer(x) @ conv.irreps_out.D_from_matrix(rotation).T
        assert float((moved - expected).norm() / expected.norm()) < 1e-12


class OnePath(torch.nn.Module):
    """A radial function giving weight 1 to one path (every channel) and 0 to the others."""

    def __init__(self, index: int, paths: int, channels: int):
        super().__init__()
        self.index, self.paths, self.channels = index, paths, channels

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        weights = torch.zeros(r.shape[0], self.paths, self.channels)
        weights[:, self.index, :] = 1.0
        return weights.reshape(r.shape[0], -1)


def test_fused_convolution_matches_e3nn_tensor_product():
    """Same function as e3nn's channel-wise TensorProduct: equal up to one constant per path."""
    torch.manual_seed(0)
    irreps_in, sh = hidden_irreps(3, 1), o3.Irreps.spherical_harmonics(2)
    conv = EquivariantConvolution(irreps_in, sh, 2, RadialSettings(cutoff=4.0), avg_num_neighbors=1.0)
    x, y = irreps_in.randn(5, -1), sh.randn(5, -1)
    ones = torch.ones(5)
    for index, (l1, l2, l3) in enumerate(conv.paths):
        reference = o3.TensorProduct(o3.Irreps(f"3x{l1}{'eo'[l1 % 2]}"), o3.Irreps(f"1x{l2}{'eo'[l2 % 2]}"),
                                     o3.Irreps(f"3x{l3}{'eo'[l3 % 2]}"), [(0, 0, 0, "uvu", False)])
        start_in = sum(3 * (2 * l + 1) for l in range(l1))
        expected = reference(x[:, start_in:start_in + 3 * (2 * l1 + 1)], y[:, l2 * l2:(l2 + 1) ** 2])
        conv.radial = OnePath(index, len(conv.paths), channels=3)
        start_out = sum(3 * (2 * p[2] + 1) for p in conv.paths[:index])
        got = groups_to_block_layout(conv(x, y, ones, torch.arange(5), torch.arange(5)))[:, start_out:start_out + 3 * (2 * l3 + 1)]
        ratio = (got * expected).sum() / (expected * expected).sum()
        assert torch.allclose(got, ratio * expected, atol=1e-12)


def test_sphere_grid_error_shrinks_with_the_grid():
    """Equivariance error of the grid MLP against grid size (aliasing of the pointwise nonlinearity)."""
    irreps = hidden_irreps(8, 2)
    errors = []
    for resolution in [(6, 5), (10, 9), (14, 13), (18, 17), (30, 29)]:
        torch.manual_seed(0)
        layer = SphereGridActivation(irreps, resolution=resolution)
        errors.append(relative_equivariance_error(layer, irreps, irreps))
    assert all(later < earlier for earlier, later in zip(errors, errors[1:]))
    assert errors[0] > 1e-3 and errors[-1] < 1e-8, errors


def test_sphere_grid_is_exact_for_reflections_and_scalars():
    irreps = hidden_irreps(8, 1)
    layer = SphereGridActivation(irreps)
    x = irreps.randn(10, -1)
    inversion = -torch.eye(3)
    assert torch.allclose(layer(x @ irreps.D_from_matrix(inversion).T), layer(x) @ irreps.D_from_matrix(inversion).T,
                          atol=1e-12)
    scalars = SphereGridActivation(hidden_irreps(8, 0))
    assert torch.allclose(scalars(x[:, :8]), scalars.mlp(x[:, :8]))


def test_path_linear_is_exactly_equivariant_and_mixes_paths():
    """PathLinear (channel layout) commutes with rotations, and every path reaches every output channel."""
    torch.manual_seed(0)
    paths_per_l = [2, 3, 1]
    layer = PathLinear(4, 5, paths_per_l)
    irreps_in = o3.Irreps("+".join(f"4x{l}{'eo'[l % 2]}" for l, p in enumerate(paths_per_l) for _ in range(p)))
    irreps_out = hidden_irreps(5, 2)

    def as_blocks(x):  # block layout (one 4×(2l+1) block per path) → PathLinear → block layout
        groups, start = [], 0
        for l, p in enumerate(paths_per_l):
            width = 4 * p * (2 * l + 1)
            groups.append(x[:, start:start + width].reshape(-1, p, 4, 2 * l + 1).transpose(1, 2))
            start += width
        return to_block_layout(layer(groups), [0, 1, 2])

    assert relative_equivariance_error(as_blocks, irreps_in, irreps_out) < 1e-12
    x = irreps_in.randn(1, -1, requires_grad=True)
    as_blocks(x)[0, 0].backward()  # output channel 0 of l = 0 depends on every l = 0 input, no other l
    n0 = 4 * paths_per_l[0]
    assert bool((x.grad[0, :n0] != 0).all()) and bool((x.grad[0, n0:] == 0).all())


@pytest.mark.parametrize("kind, exponent", [("mlp", 5), ("mlp", 8), ("spline", 5)])
def test_radial_weights_start_at_order_one_and_vanish_at_the_cutoff(kind, exponent):
    """Both radials start with weights of order one over bonded distances (the MLP's default
    torch initialisation shrank them ~100-fold) and go to zero at the cutoff, whatever the
    MLP envelope's exponent."""
    torch.manual_seed(0)
    radial = RadialSettings(5.0, kind, 8, (64, 64), exponent).build(224)
    r = torch.linspace(1.0, 4.0, 512)
    moment = radial(r).pow(2).mean().item()
    assert 0.2 < moment < 5.0, moment
    at_cutoff = radial(torch.tensor([5.0 - 1e-6])).abs().max().item()
    assert at_cutoff < 1e-6 * max(1.0, radial(r).abs().max().item())


@pytest.mark.parametrize("a_lmax, problem", [([2], "one value per layer"), ([1, 4], "between 1 and 3"), (0, "between 1 and 3"),
                                             (2.5, "an integer or a list")])
def test_per_layer_neighbour_sum_degrees_are_checked(a_lmax, problem):
    from mlip.models.equivariant import EquivariantNetwork

    with pytest.raises(ValueError, match=problem):
        EquivariantNetwork(2, 4.0, channels=4, lmax=1, sh_lmax=3, a_lmax=a_lmax, num_layers=2)


def test_edge_directions_are_the_unit_vector_or_equivariant_harmonics():
    from mlip.models.transformer import EdgeDirections, TransformerNetwork

    torch.manual_seed(0)
    vectors = torch.randn(20, 3, dtype=torch.float64)
    lengths = torch.linalg.vector_norm(vectors, dim=-1)
    assert torch.allclose(EdgeDirections(1)(vectors, lengths), vectors / lengths[:, None])
    harmonics = EdgeDirections(3)
    features = harmonics(vectors, lengths)
    assert features.shape == (20, 15) == (20, harmonics.dim)
    # l = 1 block: √3 r̂ (e3nn orders it x, y, z); every block turns with its Wigner matrix
    assert torch.allclose(features[:, :3], 3 ** 0.5 * vectors / lengths[:, None])
    rotation = o3.rand_matrix(dtype=torch.float64)
    wigner = o3.Irreps("1o + 2e + 3o").D_from_matrix(rotation)
    assert torch.allclose(harmonics(vectors @ rotation.T, lengths), features @ wigner.T, atol=1e-12)
    with pytest.raises(ValueError, match="geometry_lmax"):
        TransformerNetwork(2, 5.0, geometry_lmax=0)


def test_a_larger_envelope_exponent_keeps_more_of_the_outer_shell():
    """At 0.89 r_cut (bcc Mo's third shell at 5 Å) p = 5 keeps ~3 % of a neighbour's weight, p = 8 ~9 %."""
    from mlip.nn.cutoff import PolynomialEnvelope

    x = torch.tensor([0.89 * 5.0], dtype=torch.float64)
    assert abs(PolynomialEnvelope(5.0, 5)(x).item() - 0.033) < 1e-3
    assert abs(PolynomialEnvelope(5.0, 8)(x).item() - 0.088) < 1e-3
    with pytest.raises(ValueError, match="envelope_exponent"):
        RadialSettings(5.0, "mlp", envelope_exponent=1)


def test_trainable_bessel_frequencies_start_as_the_fixed_basis_and_learn():
    """NequIP's trainable Bessel basis: the same function as the fixed one at initialisation, the
    frequencies receive gradients, and the weights still vanish at the cutoff once they moved."""
    torch.manual_seed(0)
    fixed = RadialSettings(5.0, "mlp", 8).build(16)
    torch.manual_seed(0)
    trainable = RadialSettings(5.0, "mlp", 8, trainable_basis=True).build(16)
    r = torch.linspace(0.8, 4.9, 64)
    assert torch.allclose(fixed(r), trainable(r))
    assert "basis.frequencies" in dict(trainable.named_parameters())
    assert "basis.frequencies" not in dict(fixed.named_parameters())
    trainable(r).square().sum().backward()
    assert trainable.basis.frequencies.grad.abs().min() > 0
    with torch.no_grad():
        trainable.basis.frequencies.mul_(1.1)
    assert not torch.allclose(fixed(r), trainable(r))
    assert trainable(torch.tensor([5.0 - 1e-6])).abs().max() < 1e-6
    with pytest.raises(ValueError, match="trainable_basis"):
        RadialSettings(5.0, "spline", trainable_basis=True)


@pytest.mark.parametrize("lmax,mixing", [(1, False), (3, False), (2, True)])
def test_neighbourhood_invariants_are_rotation_invariant_and_angular(lmax, mixing):
    """The tokens' neighbourhood summary (A_k,00 and the power spectrum Σ_m A_k,lm², or its channel-mixed
    form Σ_m A_k,lm (M_l A)_k,lm, with per-neighbour channel weights) is exactly invariant under rotations
    and reflections of the edges, yet tells bond angles apart."""
    from mlip.models.transformer import EdgeDirections
    from mlip.nn.cutoff import PolynomialEnvelope
    from mlip.nn.environment import NeighbourhoodInvariants
    from mlip.nn.radial import BSplineBasis

    torch.manual_seed(0)
    basis, envelope, directions = BSplineBasis(5.0, 8).double(), PolynomialEnvelope(5.0), EdgeDirections(lmax)
    invariants = NeighbourhoodInvariants(8, 4, lmax, 10.0, mixing=mixing).double()
    if mixing:  # a generic mixing, not the identity it starts from
        invariants.mixing.data += 0.3 * torch.randn_like(invariants.mixing)

    def summary(v: torch.Tensor, receivers: torch.Tensor, num_atoms: int, weights=None) -> torch.Tensor:
        lengths = torch.linalg.vector_norm(v, dim=-1)
        angular = directions(v, lengths)
        harmonics = torch.cat([torch.ones_like(angular[:, :1]), angular], dim=-1)
        return invariants(basis(lengths) * envelope(lengths).unsqueeze(-1), harmonics, receivers, num_atoms, weights)

    vectors = torch.randn(12, 3, dtype=torch.float64)
    vectors = vectors / torch.linalg.vector_norm(vectors, dim=-1, keepdim=True) * 2.0
    receivers = torch.arange(12) % 3
    weights = torch.randn(12, 4, dtype=torch.float64)
    reference = summary(vectors, receivers, 3, weights)
    assert reference.shape == (3, 4 * (lmax + 1))
    transform = o3.rand_matrix(dtype=torch.float64) * (-1.0)
    assert torch.allclose(summary(vectors @ transform.T, receivers, 3, weights), reference, atol=1e-12)
    # two neighbours at the same distances, 60° against 120° apart: same A_00, different invariants
    pair = torch.tensor([[2.0, 0.0, 0.0], [1.0, 3 ** 0.5, 0.0], [2.0, 0.0, 0.0], [-1.0, 3 ** 0.5, 0.0]],
                        dtype=torch.float64)
    angles = summary(pair, torch.tensor([0, 0, 1, 1]), 2)
    assert torch.allclose(angles[0, :4], angles[1, :4])
    assert not torch.allclose(angles[0, 4:], angles[1, 4:])
    from mlip.models.transformer import TransformerNetwork
    with pytest.raises(ValueError, match="environment_lmax"):
        TransformerNetwork(2, 5.0, environment_lmax=4)
    with pytest.raises(ValueError, match="environment_lmax >= 1"):
        TransformerNetwork(2, 5.0, environment_blocks=True)


def test_transformer_with_environment_loads_weights_saved_under_the_former_name():
    """Model files written before the invariants moved to `mlip.nn.environment` name their radial map
    `environment_radial`; they load into the same network."""
    from mlip.models.transformer import TransformerNetwork

    torch.manual_seed(0)
    network = TransformerNetwork(2, 5.0, dim=8, heads=2, num_layers=1, environment_lmax=2)
    state = network.state_dict()
    state["environment_radial.weight"] = state.pop("environment_invariants.radial.weight") + 1.0
    fresh = TransformerNetwork(2, 5.0, dim=8, heads=2, num_layers=1, environment_lmax=2)
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.environment_invariants.radial.weight, state["environment_radial.weight"])


def test_irrep_dropout_drops_whole_irreps_and_keeps_the_mean():
    from mlip.nn.dropout import IrrepDropout

    irreps = o3.Irreps("3x0e + 2x1o + 1x2e")
    dropout = IrrepDropout(irreps, 0.25).train()
    x = torch.ones(20000, irreps.dim, dtype=torch.float64)
    torch.manual_seed(0)
    y = dropout(x)
    assert set(torch.unique(y).tolist()) == {0.0, 1.0 / 0.75}
    vectors, tensor = y[:, 3:9].reshape(-1, 2, 3), y[:, 9:14]
    assert (vectors == vectors[..., :1]).all() and (tensor == tensor[:, :1]).all()  # an irrep's components together
    assert abs(float((y[:, :3] == 0).double().mean()) - 0.25) < 0.01 and abs(float(y.mean()) - 1.0) < 0.01
    assert torch.equal(dropout.eval()(x), x) and not list(dropout.state_dict())  # identity in eval; nothing saved
    with pytest.raises(ValueError, match="dropout"):
        IrrepDropout(irreps, 1.0)


def test_transformer_edge_tokens_do_not_depend_on_the_padding_of_the_neighbour_layout():
    """Edge-token attention gives the same per-atom energies with the eager layout (degree = the largest
    neighbour count) and with a compiled-call layout (degree rounded up to 8, built whatever the padding),
    with an atom of one neighbour beside one of many; an atom with no neighbour attends to itself."""
    from mlip.models.transformer import TransformerNetwork
    from mlip.nn.segments import GrowingCompiledLayout, NeighbourSegments

    torch.manual_seed(0)
    network = TransformerNetwork(3, 4.0, dim=16, heads=2, num_layers=2, attention="edge", edge_dim=8).double()
    assert network.segment_sums and network.segment_layout_required
    receivers = torch.tensor([0, 0, 0, 0, 0, 1, 2, 3, 4, 1])
    senders = torch.tensor([1, 2, 3, 4, 1, 0, 0, 0, 0, 0])
    vectors = torch.randn(10, 3, dtype=torch.float64).clamp(-1.5, 1.5)
    species = torch.tensor([0, 1, 2, 1, 0, 2])  # atom 5 has no neighbour
    eager = network(species, vectors, receivers, senders)
    # five slots for atom 0 and one or two for the rest: twice the edges in padding, which the equivariant
    # network's layout refuses and the edge tokens must take
    assert NeighbourSegments.compiled_layout(receivers, 6) is None
    layout = GrowingCompiledLayout(always=True)(receivers, 6)
    assert layout is not None and layout[1].shape[0] == 8
    assert torch.allclose(network(species, vectors, receivers, senders, segment_layout=layout), eager, atol=1e-12)
    assert torch.isfinite(eager).all()
    with pytest.raises(ValueError, match="edge_dim"):
        TransformerNetwork(3, 4.0, dim=16, heads=3, attention="edge", edge_dim=8)
