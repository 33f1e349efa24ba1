"""Frozen weights (inference): e3nn's linear maps as cached matrices, the same numbers as e3nn's code."""

from __future__ import annotations

import pytest
import torch
from ase.build import bulk, molecule
from e3nn import o3

from mlip.graph import GraphBatch
from mlip.io import Frame
from mlip.models import build_potential
from mlip.models.presets import load_preset
from mlip.nn.frozen import FrozenDenseLinear, FrozenDenseSpeciesProduct
from mlip.nn.linear import PathLinear

pytestmark = pytest.mark.usefixtures("float64_default")


@pytest.mark.parametrize("irreps_in, irreps_out, biases", [
    ("32x0e+32x1o", "32x0e+32x1o", False),
    ("8x0e+4x1o+2x2e+3x0e", "5x0e+3x1o+2x2e", True),
    ("3x0e", "16x0e", True),
])
def test_linear_equals_e3nn_and_follows_weight_changes(irreps_in, irreps_out, biases):
    torch.manual_seed(0)
    frozen = FrozenDenseLinear(irreps_in, irreps_out, biases=biases)
    reference = o3.Linear(irreps_in, irreps_out, biases=biases)
    reference.load_state_dict(frozen.state_dict())                   # same parameters, same keys
    if biases:
        with torch.no_grad():
            frozen.bias.normal_()
            reference.bias.copy_(frozen.bias)
    x = torch.randn(7, o3.Irreps(irreps_in).dim)
    frozen.requires_grad_(False)
    assert torch.allclose(frozen(x), reference(x), atol=1e-12)
    assert hasattr(frozen, "_dense_cache")                            # the matrix product ran, not e3nn's code
    with torch.no_grad():                                             # an in-place update (an optimiser step, EMA)
        frozen.weight.mul_(-2.0)
        reference.weight.mul_(-2.0)
    assert torch.allclose(frozen(x), reference(x), atol=1e-12)
    assert torch.allclose(frozen.to(torch.float32)(x.float()), reference(x).float(), atol=1e-5)


def test_trainable_weights_keep_their_gradients():
    """With requires_grad on, e3nn's own code runs and the weights get gradients."""
    torch.manual_seed(0)
    linear = FrozenDenseLinear("4x0e+2x1o", "3x0e+2x1o")
    linear(torch.randn(5, 10)).pow(2).sum().backward()
    assert linear.weight.grad is not None and linear.weight.grad.abs().sum() > 0


def test_species_product_equals_e3nn_for_any_second_input():
    """Bilinear: Σ_s z_s (x @ M_s) is exact for one-hot species and for any other z."""
    torch.manual_seed(0)
    irreps = o3.Irreps("6x0e+4x1o")
    frozen = FrozenDenseSpeciesProduct(irreps, o3.Irreps("3x0e"), o3.Irreps("5x0e+4x1o"))
    reference = o3.FullyConnectedTensorProduct(irreps, o3.Irreps("3x0e"), o3.Irreps("5x0e+4x1o"))
    reference.load_state_dict(frozen.state_dict())
    frozen.requires_grad_(False)
    x = torch.randn(9, irreps.dim)
    for z in (torch.nn.functional.one_hot(torch.tensor([0, 2, 1, 1, 0, 2, 2, 0, 1]), 3).double(), torch.randn(9, 3)):
        assert torch.allclose(frozen(x, z), reference(x, z), atol=1e-12)
    assert hasattr(frozen, "_dense_cache")                            # the matrix product ran, not e3nn's code
    single = FrozenDenseSpeciesProduct(irreps, o3.Irreps("1x0e"), o3.Irreps("4x1o")).requires_grad_(False)
    ones = torch.ones(9, 1)
    assert torch.allclose(single(x, ones), o3.FullyConnectedTensorProduct.forward(single, x, ones), atol=1e-12)


def test_path_linear_cache_follows_the_weights():
    torch.manual_seed(0)
    linear = PathLinear(4, 3, [2, 1])
    groups = [torch.randn(5, 4, 2, 1), torch.randn(5, 4, 1, 3)]
    trained = linear(groups)
    linear.requires_grad_(False)
    assert torch.allclose(linear(groups), trained, atol=1e-12)
    with torch.no_grad():
        linear.weights[1].add_(1.0)
    linear.requires_grad_(True)
    expected = linear(groups)
    linear.requires_grad_(False)
    assert torch.allclose(linear(groups), expected, atol=1e-12)
    assert not torch.allclose(expected, trained)


def test_frozen_potential_gives_the_same_energies_forces_and_stress():
    """A whole potential (float64): frozen weights change nothing but the cost."""
    crystal = bulk("Si", "diamond", a=5.43, cubic=True)
    crystal.rattle(0.05, seed=1)
    ethanol = molecule("CH3CH2OH")
    batch = GraphBatch.from_frames([Frame(numbers=a.numbers, positions=a.positions, cell=a.cell.array, pbc=a.pbc)
                                    for a in (crystal, ethanol)], 4.0)
    torch.manual_seed(0)
    potential = build_potential(elements=[1, 6, 8, 14], cutoff=4.0, dtype=torch.float64,
                                **load_preset("equivariant_medium")).eval()
    trainable = potential(batch, forces=True, stress=True)
    potential.requires_grad_(False)
    frozen = potential(batch, forces=True, stress=True)
    for key in ("energy", "forces", "stress"):
        assert torch.allclose(trainable[key], frozen[key], rtol=1e-12, atol=1e-12, equal_nan=True), key
