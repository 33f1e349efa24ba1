"""Many-body features: channel-wise products of the neighbour sum with itself (MACE-style body order)."""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn


def channelwise_product(irreps1: o3.Irreps, irreps2: o3.Irreps, allowed: o3.Irreps, symmetric: bool = False,
                        shared_weights: bool = True) -> o3.TensorProduct:
    """x ⊗ y channel by channel ("uuu") for all pairs (l1, l2) → l of a type in `allowed`.

    `symmetric=True` (x and y are the same tensor) keeps only pairs i ≤ j: the swapped pair
    spans the same outputs. With `shared_weights=False` the path weights (one per path and
    channel) come with the call, shape (N, weight_numel): e.g. per element.
    """
    kinds = {ir for _, ir in allowed}
    outputs, instructions = [], []
    for i, (mul, ir1) in enumerate(irreps1):
        for j, (mul2, ir2) in enumerate(irreps2):
            if symmetric and j < i:
                continue
            if mul2 != mul:
                raise ValueError(f"channel-wise product needs equal multiplicities, got {irreps1} and {irreps2}")
            for ir in ir1 * ir2:
                if ir in kinds:
                    instructions.append((i, j, len(outputs), "uuu", True))
                    outputs.append((mul, ir))
    return o3.TensorProduct(irreps1, irreps2, o3.Irreps(outputs), instructions, shared_weights=shared_weights,
                            internal_weights=shared_weights)


class ProductBasis(nn.Module):
    """B = Linear([A, P₂, P₃, ...]) with P₂ = W₂(A ⊗ A), P_ν = W_ν(P_{ν−1} ⊗ A), ν ≤ `correlation`.

    A is a sum over neighbours (two-body per atom), so a product of ν copies carries
    (ν+1)-body information, as in MACE's symmetric contraction (Batatia et al. 2022). Each ⊗
    is a channel-wise ("uuu") tensor product coupling every pair of l within a channel; W_ν
    maps the paths back to one copy of each l. Exact in e3nn.

    A may carry higher l than the output (`irreps_in` l ≤ 3 from l = 3 edge harmonics, output
    l ≤ 1, as MACE's max_ell 3 / max_L 1): intermediate products keep every l of A, the last
    one only the output's. With `species_weights` the path weights of every product depend
    on the element of the atom (as MACE's contraction weights do).

    Shapes: a (N, irreps_in.dim), species_onehot (N, S) → (N, irreps_out.dim).
    """

    def __init__(self, irreps_in: o3.Irreps, correlation: int = 3, irreps_out: o3.Irreps | None = None,
                 num_species: int = 1, species_weights: bool = False):
        super().__init__()
        if correlation < 1:
            raise ValueError(f"correlation must be >= 1, got {correlation}")
        irreps_out = o3.Irreps(irreps_in if irreps_out is None else irreps_out)
        self.species_weights = bool(species_weights)
        self.products = nn.ModuleList()
        self.mixers = nn.ModuleList()
        self.path_weights = nn.ParameterList()
        for order in range(2, correlation + 1):
            last = order == correlation
            product = channelwise_product(irreps_in, irreps_in, irreps_out if last else irreps_in,
                                          symmetric=order == 2, shared_weights=not species_weights)
            self.products.append(product)
            if species_weights:  # one set of path × channel weights per element, ~unit scale like e3nn's
                self.path_weights.append(nn.Parameter(torch.randn(num_species, product.weight_numel)))
            self.mixers.append(o3.Linear(product.irreps_out, irreps_out if last else irreps_in))
        kept = o3.Irreps([(mul, ir) for mul, ir in irreps_in if ir in {i for _, i in irreps_out}])
        self.keep = _slices(irreps_in, kept)
        self.linear = o3.Linear(kept + (irreps_in * (correlation - 2) if correlation > 2 else o3.Irreps(""))
                                + (irreps_out if correlation > 1 else o3.Irreps("")), irreps_out)

    def forward(self, a: torch.Tensor, species_onehot: torch.Tensor | None = None) -> torch.Tensor:
        features, current = [a[:, self.keep]], a
        for k, (product, mixer) in enumerate(zip(self.products, self.mixers)):
            if self.species_weights:
                current = mixer(product(current, a, species_onehot @ self.path_weights[k]))
            else:
                current = mixer(product(current, a))
            features.append(current)
        return self.linear(torch.cat(features, dim=-1))


def _slices(irreps: o3.Irreps, kept: o3.Irreps) -> torch.Tensor:
    """Column indices of the blocks of `irreps` that are in `kept` (same order)."""
    wanted = {ir for _, ir in kept}
    columns, start = [], 0
    for mul, ir in irreps:
        if ir in wanted:
            columns.extend(range(start, start + mul * ir.dim))
        start += mul * ir.dim
    return torch.tensor(columns, dtype=torch.long)
