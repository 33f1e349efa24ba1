"""The sparse bilinear map of the product basis (`mlip.nn.sparse_bilinear`): values and derivatives of
first and second order, for distinct inputs and for a map of one input with itself (A ⊗ A), in both
forms (row by row for wide rows, gathers for narrow ones)."""

from __future__ import annotations

import pytest
import torch

import mlip.nn.sparse_bilinear as sparse_bilinear_module
from mlip.nn.irreps import coupling_paths, coupling_tensor
from mlip.nn.product import ChannelwiseProduct, _sparse_sum_unrolled, sparse_terms
from mlip.nn.sparse_bilinear import SparseBilinearTerms, sparse_bilinear


@pytest.fixture(params=["rows", "gathers"], autouse=True)
def form(request, monkeypatch):
    """Run every test with each form: the width from which rows are used set to 0 or out of reach."""
    monkeypatch.setattr(sparse_bilinear_module, "ROW_FORM_MIN_WIDTH", 0 if request.param == "rows" else 10**9)
    return request.param


def _terms(symmetric: bool) -> tuple[SparseBilinearTerms, torch.Tensor]:
    coupling, _ = coupling_tensor(coupling_paths(2, 2, 2, symmetric), 2, 2)
    first, second, column, value = sparse_terms(coupling, symmetric)
    terms = SparseBilinearTerms(list(zip(first.tolist(), second.tolist(), column.tolist(), value.tolist())),
                                coupling.shape[2], coupling.shape[0], coupling.shape[1])
    return terms, coupling


@pytest.mark.parametrize("symmetric", [False, True])
def test_values_equal_the_dense_contraction(symmetric):
    terms, coupling = _terms(symmetric)
    torch.manual_seed(0)
    a = torch.randn(9, 7, dtype=torch.float64)
    b = a if symmetric else torch.randn(9, 7, dtype=torch.float64)
    dense = torch.einsum("im,jm,ijk->km", a, b, coupling)  # the swapped terms folded by `symmetric` included
    assert torch.allclose(sparse_bilinear(a, b, terms), dense, atol=1e-13, rtol=0)


def test_first_and_second_derivatives_are_exact():
    terms, _ = _terms(False)
    torch.manual_seed(1)
    a = torch.randn(9, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(9, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: sparse_bilinear(a, b, terms), (a, b))
    assert torch.autograd.gradgradcheck(lambda a, b: sparse_bilinear(a, b, terms), (a, b))
    # a map of one input with itself: both slots' gradients reach it
    assert torch.autograd.gradgradcheck(lambda a: sparse_bilinear(a, a, _terms(True)[0]) ** 2, (a,))


def test_the_training_derivatives_equal_those_of_the_term_by_term_form():
    """A force loss's derivatives (a gradient with create_graph, then a backward) through the eager map
    equal those through the term-by-term form torch.compile uses (plain autograd ops)."""
    torch.manual_seed(2)
    product = ChannelwiseProduct(4, 3, 3, 1, symmetric=True)

    def loss_gradient(contract) -> torch.Tensor:
        x = torch.randn(6, 4, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(3)).requires_grad_(True)
        rows = x.reshape(24, 16).t()
        energy = (contract(rows) ** 2).sum()
        force, = torch.autograd.grad(energy, x, create_graph=True)
        force.pow(2).sum().backward()
        return torch.cat([force.detach().flatten(), x.grad.flatten()])

    eager = loss_gradient(lambda rows: sparse_bilinear(rows, rows, product.terms))
    unrolled = loss_gradient(lambda rows: _sparse_sum_unrolled(rows, rows, product.terms_by_column))
    assert torch.allclose(eager, unrolled, atol=1e-11, rtol=1e-11)


def test_torch_func_gradients_equal_autograd_ones():
    """torch.func.grad (compiled training's form, run eagerly when a compiler falls back) through the map."""
    terms, _ = _terms(False)
    torch.manual_seed(4)
    a, b = torch.randn(9, 6, dtype=torch.float64), torch.randn(9, 6, dtype=torch.float64)

    def energy(a: torch.Tensor) -> torch.Tensor:
        return (sparse_bilinear(a, b, terms) ** 2).sum()

    leaf = a.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(energy(leaf), leaf)
    assert torch.allclose(torch.func.grad(energy)(a), expected, atol=1e-12, rtol=0)
