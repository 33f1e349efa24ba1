"""The Gaunt product on a sphere grid: exact on its grid, the Gaunt coefficients, equivariant, usable in the network."""

from __future__ import annotations

import pytest
import torch
from e3nn import o3

from mlip.nn.gaunt import GauntProduct, gaunt_resolution
from mlip.nn.irreps import hidden_irreps, to_block_layout, to_channel_layout
from mlip.nn.product import ProductBasis


pytestmark = pytest.mark.usefixtures("float64_default")


def gaunt_tensor(product: GauntProduct) -> torch.Tensor:
    """G_ijk of the grid product without the learned weights: (dim1, dim2, dim_out)."""
    return torch.einsum("ip,jp,pk->ijk", product.to_grid1, product.to_grid2, product.from_grid)


@pytest.mark.parametrize("lmax1,lmax2,lmax_out", [(3, 3, 3), (3, 3, 1), (2, 2, 2), (1, 3, 2)])
def test_grid_product_is_exact_on_its_grid(lmax1, lmax2, lmax_out):
    coarse = GauntProduct(4, lmax1, lmax2, lmax_out)
    fine = GauntProduct(4, lmax1, lmax2, lmax_out, resolution=(60, 61))
    # the same normalisation on both grids follows from exactness; compare the raw coefficients too
    assert torch.allclose(gaunt_tensor(coarse), gaunt_tensor(fine), atol=1e-13, rtol=0)
    res_beta, res_alpha = gaunt_resolution(lmax1, lmax2, lmax_out)
    too_coarse = GauntProduct(4, lmax1, lmax2, lmax_out, resolution=(res_beta, res_alpha - 1))  # aliased in α
    assert not torch.allclose(gaunt_tensor(too_coarse), gaunt_tensor(fine), atol=1e-6, rtol=0)


def test_grid_product_is_the_gaunt_coefficients():
    """Each (l1, l2, l3) block is proportional to the Wigner 3j symbol, and zero when l1 + l2 + l3 is odd."""
    gaunt = gaunt_tensor(GauntProduct(4, 3, 3, 3))
    for l1 in range(4):
        for l2 in range(4):
            for l3 in range(abs(l1 - l2), min(l1 + l2, 3) + 1):
                block = gaunt[l1 * l1:(l1 + 1) ** 2, l2 * l2:(l2 + 1) ** 2, l3 * l3:(l3 + 1) ** 2]
                if (l1 + l2 + l3) % 2:
                    assert block.abs().max() < 1e-13, (l1, l2, l3)
                    continue
                w3j = o3.wigner_3j(l1, l2, l3)
                ratio = (block * w3j).sum() / (w3j * w3j).sum()
                assert abs(ratio) > 1e-3 and torch.allclose(block, ratio * w3j, atol=1e-13), (l1, l2, l3)


def test_unit_variance_inputs_give_unit_variance_outputs():
    torch.manual_seed(0)
    product = GauntProduct(1, 3, 3, 3)
    x, y = torch.randn(20000, 1, 16), torch.randn(20000, 1, 16)
    raw = ((x @ product.to_grid1) * (y @ product.to_grid2)) @ product.from_grid
    variance = raw.pow(2).mean(dim=(0, 1))
    for l in range(4):
        assert abs(float(variance[l * l:(l + 1) ** 2].mean()) - 1) < 0.05


@pytest.mark.parametrize("a_lmax,lmax,species", [(3, 1, True), (2, 0, True), (2, 2, False)])
def test_gaunt_product_basis_is_exactly_equivariant(a_lmax, lmax, species):
    irreps_in, irreps_out = hidden_irreps(4, a_lmax), hidden_irreps(4, lmax)
    torch.manual_seed(0)
    product = ProductBasis(4, a_lmax, lmax, 3, num_species=3, species_weights=species, product="gaunt")
    onehot = torch.nn.functional.one_hot(torch.randint(0, 3, (20,)), 3).double()
    x = irreps_in.randn(20, -1)
    for seed in range(4):
        torch.manual_seed(seed)
        rotation = o3.rand_matrix() * (-1 if seed % 2 else 1)
        moved = product(to_channel_layout(x @ irreps_in.D_from_matrix(rotation).T, 4, a_lmax), onehot)
        expected = to_block_layout(product(to_channel_layout(x, 4, a_lmax), onehot), list(range(lmax + 1))) \
            @ irreps_out.D_from_matrix(rotation).T
        moved = to_block_layout(moved, list(range(lmax + 1)))
        assert float((moved - expected).detach().norm() / expected.detach().norm()) < 1e-12


def test_species_weights_make_the_gaunt_product_depend_on_the_element():
    product = ProductBasis(4, 3, 1, 3, num_species=2, species_weights=True, product="gaunt")
    a = to_channel_layout(hidden_irreps(4, 3).randn(1, -1), 4, 3)
    assert not torch.allclose(product(a, torch.tensor([[1.0, 0.0]])), product(a, torch.tensor([[0.0, 1.0]])))


def test_unknown_product_is_refused():
    with pytest.raises(ValueError, match="product must be 'tensor'"):
        ProductBasis(4, 2, 1, 3, product="fourier")


def test_network_with_gaunt_product_is_invariant_with_exact_forces():
    from mlip.graph import GraphBatch
    from mlip.io import Frame
    from mlip.models import build_potential

    torch.manual_seed(0)
    potential = build_potential("equivariant", ["H", "C", "O"], 4.0, dtype=torch.float64, channels=8, lmax=1,
                                sh_lmax=[3, 2], a_lmax=[3, 2], species_product=True, product="gaunt")
    positions = torch.randn(7, 3, dtype=torch.float64) * 1.2
    numbers = [1, 6, 8, 1, 6, 1, 8]

    def energy_and_forces(pos):
        batch = GraphBatch.from_frames([Frame(numbers=numbers, positions=pos.numpy())], 4.0).to(dtype=torch.float64)
        out = potential(batch, forces=True)
        return float(out["energy"][0]), out["forces"].detach()

    energy, forces = energy_and_forces(positions)
    rotation = o3.rand_matrix(dtype=torch.float64) * -1  # a rotation and an inversion
    moved_energy, moved_forces = energy_and_forces(positions @ rotation.T + 0.7)
    assert abs(moved_energy - energy) < 1e-10 * max(1.0, abs(energy))
    assert torch.allclose(moved_forces, forces @ rotation.T, atol=1e-10)
    step = 1e-5  # forces are −dE/dx: central differences on one coordinate
    plus, minus = positions.clone(), positions.clone()
    plus[2, 1] += step
    minus[2, 1] -= step
    numeric = -(energy_and_forces(plus)[0] - energy_and_forces(minus)[0]) / (2 * step)
    assert abs(numeric - float(forces[2, 1])) < 1e-7


def test_gaunt_basis_keeps_the_contraction_to_scalars_sparse():
    from mlip.nn.product import ChannelwiseProduct

    kinds = [type(p) for p in ProductBasis(4, 2, 0, 3, product="gaunt").products]
    assert kinds == [GauntProduct, ChannelwiseProduct]  # A ⊗ A keeps l ≤ 2 on the grid; the last, to scalars, stays sparse
    assert [type(p) for p in ProductBasis(4, 3, 1, 3, product="gaunt").products] == [GauntProduct, GauntProduct]
