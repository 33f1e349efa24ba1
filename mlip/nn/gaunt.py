"""Gaunt product: multiply two sets of spherical-harmonic coefficients as functions on a sphere grid."""

from __future__ import annotations

import torch
from torch import nn

from mlip.nn.linear import PathLinear
from mlip.nn.sphere_grid import grid_transforms


def gaunt_resolution(lmax1: int, lmax2: int, lmax_out: int) -> tuple[int, int]:
    """The smallest (res_beta, res_alpha) on which the grid product is exact: B + 1 points in α and
    B + 1 rounded up to even in β (e3nn's grids need an even β count), B = lmax1 + lmax2 +
    lmax_out, the band limit of the integrand f·g·Y_l3 (measured: `tests/test_gaunt.py` compares
    with a 60 × 61 grid to 1e-13, and one α point fewer aliases)."""
    points = lmax1 + lmax2 + lmax_out + 1
    return points + points % 2, points


def degree_index(lmax: int) -> torch.Tensor:
    """The degree l of every component of (lmax+1)² coefficients: [0, 1, 1, 1, 2, ...] (int64)."""
    return torch.cat([torch.full((2 * l + 1,), l, dtype=torch.long) for l in range(lmax + 1)])


class GauntProduct(nn.Module):
    """z = FromGrid(ToGrid(a ⊙ x) · ToGrid(b ⊙ y)), channel by channel, then each l3 mixed into C channels.

    Every channel of x and y is a function on the sphere, f(r̂) = Σ_lm x_lm Y_lm(r̂); their
    pointwise product, projected back to l ≤ `lmax_out`, is the Gaunt tensor product
    (Luo et al. 2024): every path (l1, l2) → l3 with l1 + l2 + l3 even (natural parity, as the
    channel-wise tensor product of `mlip.nn.product`), each with its fixed Gaunt coefficient.
    Flexibility comes from per-degree weights a_l1, b_l2 on the inputs (element-dependent with
    `num_species`, as MACE's contraction), so a path's weight is a_l1·b_l2·G(l1, l2, l3) instead
    of a free weight per path, and from the per-l3 channel mix after the product.

    Cost: three dense matrix products of (N·C, (l+1)²) × (P grid points) plus one pointwise
    product, against a sparse sum over the Clebsch-Gordan tensor's non-zero entries for the
    channel-wise product. Exact (no aliasing) on the grid of `gaunt_resolution`, so it is
    rotation-equivariant to rounding; columns are scaled per l3 so that unit-variance inputs
    give unit-variance outputs (component normalisation, as the channel-wise product).

    Shapes: x (N, C, (lmax1+1)²), y (N, C, (lmax2+1)²) channel layout, species_onehot (N, S)
            → (N, C, (lmax_out+1)²) channel layout.
    """

    def __init__(self, channels: int, lmax1: int, lmax2: int, lmax_out: int, num_species: int | None = None,
                 resolution: tuple[int, int] | None = None):
        super().__init__()
        lmax = max(lmax1, lmax2, lmax_out)
        to_grid, from_grid = grid_transforms(lmax, *(resolution or gaunt_resolution(lmax1, lmax2, lmax_out)))
        to_grid1, to_grid2 = to_grid[:(lmax1 + 1) ** 2], to_grid[:(lmax2 + 1) ** 2]
        from_grid = from_grid[:, :(lmax_out + 1) ** 2]
        # component normalisation: Σ_ij G_ijk² averaged over the 2l3+1 columns of each l3
        gaunt = torch.einsum("ip,jp,pk->ijk", to_grid1, to_grid2, from_grid)
        norms = gaunt.pow(2).sum(dim=(0, 1))
        degrees_out = degree_index(lmax_out)
        per_l = torch.zeros(lmax_out + 1, dtype=torch.float64).index_add_(0, degrees_out, norms)
        per_l = per_l / torch.tensor([2 * l + 1 for l in range(lmax_out + 1)], dtype=torch.float64)
        from_grid = from_grid / per_l.sqrt()[degrees_out]
        dtype = torch.get_default_dtype()
        for name, tensor in [("to_grid1", to_grid1), ("to_grid2", to_grid2), ("from_grid", from_grid)]:
            self.register_buffer(name, tensor.to(dtype), persistent=False)  # follow from the config
        for name, tensor in [("degree1", degree_index(lmax1)), ("degree2", degree_index(lmax2))]:
            self.register_buffer(name, tensor, persistent=False)
        self.lmax_out = lmax_out
        self.per_species = num_species is not None
        self.weights1 = nn.Parameter(torch.randn(num_species or 1, channels, lmax1 + 1))
        self.weights2 = nn.Parameter(torch.randn(num_species or 1, channels, lmax2 + 1))
        self.mix = PathLinear(channels, channels, [1] * (lmax_out + 1))

    def degree_weights(self, weights: torch.Tensor, degrees: torch.Tensor, species_onehot: torch.Tensor | None,
                       n: int) -> torch.Tensor:
        """Per-component input weights (N or 1, C, (lmax+1)²) from per-degree ones (S, C, lmax+1)."""
        if self.per_species:
            weights = (species_onehot @ weights.reshape(weights.shape[0], -1)).reshape(n, *weights.shape[1:])
        return weights.index_select(-1, degrees)

    def forward(self, x: torch.Tensor, y: torch.Tensor, species_onehot: torch.Tensor | None = None) -> torch.Tensor:
        n = x.shape[0]
        x = x * self.degree_weights(self.weights1, self.degree1, species_onehot, n)
        y = y * self.degree_weights(self.weights2, self.degree2, species_onehot, n)
        values = (x @ self.to_grid1) * (y @ self.to_grid2)                                  # (N, C, grid points)
        out = values @ self.from_grid                                                       # (N, C, (lmax_out+1)²)
        return self.mix([out[:, :, l * l:(l + 1) ** 2].unsqueeze(2) for l in range(self.lmax_out + 1)])
