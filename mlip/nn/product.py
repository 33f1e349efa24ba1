"""Many-body features: channel-wise products of the neighbour sum with itself (MACE-style body order)."""

from __future__ import annotations

import torch
from torch import nn

from mlip.nn.irreps import coupling_paths, coupling_tensor, path_groups
from mlip.nn.linear import PathLinear


class ChannelwiseProduct(nn.Module):
    """x ⊗ y channel by channel ("uuu"), every pair (l1, l2) → l3 ≤ `lmax_out` of natural parity,
    then the paths of each l3 mixed into C channels (`PathLinear`): one copy of every l3.

    With `num_species` each path and channel is first scaled by a weight of the atom's element
    (MACE's element-dependent contraction); without, such weights would be absorbed by the mix.
    Fused: one dense Clebsch-Gordan matrix over all paths, so the product is an outer product
    per channel and one matrix product. `symmetric=True` (x is y) keeps only l1 ≤ l2. Exact.

    Shapes: x (N, C, (lmax1+1)²), y (N, C, (lmax2+1)²) channel layout, species_onehot (N, S)
            → (N, C, (lmax_out+1)²) channel layout.
    """

    def __init__(self, channels: int, lmax1: int, lmax2: int, lmax_out: int, symmetric: bool = False,
                 num_species: int | None = None):
        super().__init__()
        self.paths = coupling_paths(lmax1, lmax2, lmax_out, symmetric)
        coupling, _ = coupling_tensor(self.paths, lmax1, lmax2)
        self.register_buffer("coupling", coupling.reshape(-1, coupling.shape[-1]).to(torch.get_default_dtype()),
                             persistent=False)  # follows from the config
        self.groups = path_groups(self.paths)
        self.per_species = num_species is not None
        if self.per_species:
            self.weights = nn.Parameter(torch.randn(num_species, channels, len(self.paths)))
        self.mix = PathLinear(channels, channels, [n for _, _, n, _ in self.groups])

    def forward(self, x: torch.Tensor, y: torch.Tensor, species_onehot: torch.Tensor | None = None) -> torch.Tensor:
        n, c = x.shape[0], x.shape[1]
        out = (x.unsqueeze(-1) * y.unsqueeze(-2)).reshape(n, c, -1) @ self.coupling  # (N, C, columns)
        if self.per_species:
            weights = (species_onehot @ self.weights.reshape(self.weights.shape[0], -1)).reshape(n, c, -1)
        groups = []
        for l3, first, num_paths, column in self.groups:
            group = out[:, :, column:column + num_paths * (2 * l3 + 1)].reshape(n, c, num_paths, 2 * l3 + 1)
            groups.append(group * weights[:, :, first:first + num_paths, None] if self.per_species else group)
        return self.mix(groups)


class ProductBasis(nn.Module):
    """B = Linear([A, P₂, P₃, ...]) with P₂ = W₂(A ⊗ A), P_ν = W_ν(P_{ν−1} ⊗ A), ν ≤ `correlation`.

    A is a sum over neighbours (two-body per atom), so a product of ν copies carries
    (ν+1)-body information, as in MACE's symmetric contraction (Batatia et al. 2022). Each ⊗
    is a channel-wise ("uuu") tensor product coupling every pair of l within a channel, and
    W_ν maps its paths back to one copy of each l (`ChannelwiseProduct`). Exact.

    A may carry higher l than the output (l ≤ 3 from l = 3 edge harmonics, output l ≤ 1, as
    MACE's max_ell 3 / max_L 1): intermediate products keep every l of A, the last one only
    the output's. With `species_weights` the path weights of every product depend on the
    element of the atom (as MACE's contraction weights do).

    Shapes: a (N, C, (lmax_in+1)²) channel layout, species_onehot (N, S) → (N, C, (lmax_out+1)²).
    """

    def __init__(self, channels: int, lmax_in: int, lmax_out: int, correlation: int = 3, num_species: int = 1,
                 species_weights: bool = False):
        super().__init__()
        if correlation < 1:
            raise ValueError(f"correlation must be >= 1, got {correlation}")
        if lmax_out > lmax_in:
            raise ValueError(f"the product's output l ({lmax_out}) cannot exceed its input's ({lmax_in})")
        self.lmax_out = lmax_out
        self.products = nn.ModuleList(
            ChannelwiseProduct(channels, lmax_in, lmax_in, lmax_out if order == correlation else lmax_in,
                               symmetric=order == 2, num_species=num_species if species_weights else None)
            for order in range(2, correlation + 1))
        self.linear = PathLinear(channels, channels, [correlation] * (lmax_out + 1))

    def forward(self, a: torch.Tensor, species_onehot: torch.Tensor | None = None) -> torch.Tensor:
        width = (self.lmax_out + 1) ** 2
        features, current = [a[:, :, :width]], a
        for product in self.products:
            current = product(current, a, species_onehot)
            features.append(current[:, :, :width])
        stacked = torch.stack(features, dim=2)  # (N, C, correlation, (lmax_out+1)²): one copy per body order
        return self.linear([stacked[..., l * l:(l + 1) ** 2] for l in range(self.lmax_out + 1)])
