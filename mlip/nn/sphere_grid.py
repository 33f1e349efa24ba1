"""Facet's spherical-grid nonlinearity: features as functions on a sphere grid, a pointwise MLP across channels."""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

from mlip.nn.irreps import to_block_layout, to_channel_layout


def grid_transforms(lmax: int, res_beta: int, res_alpha: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense matrices to (lmax+1)² → P = res_beta·res_alpha grid values, and back (least-squares inverse).

    Built once, in float64, from e3nn's `ToS2Grid` / `FromS2Grid` ("component" normalisation), so a
    forward pass is two matrix products. Shapes: to_grid ((lmax+1)², P), from_grid (P, (lmax+1)²).
    """
    dim, points, f64 = (lmax + 1) ** 2, res_beta * res_alpha, torch.float64
    to_grid = o3.ToS2Grid(lmax, (res_beta, res_alpha), dtype=f64)(torch.eye(dim, dtype=f64)).reshape(dim, -1)
    from_grid = o3.FromS2Grid((res_beta, res_alpha), lmax, dtype=f64)(
        torch.eye(points, dtype=f64).reshape(-1, res_beta, res_alpha))
    return to_grid, from_grid


class SphereGridActivation(nn.Module):
    """x ↦ FromS2Grid(MLP_channels(ToS2Grid(x))) for `channels` copies of every l ≤ lmax (natural parity).

    Every channel is a function on the sphere, f_c(r̂) = Σ_lm x_c,lm Y_lm(r̂); at every grid
    point a SiLU MLP (shared weights) maps the C channel values to C new ones, which are
    projected back to l ≤ lmax (Facet, Miklaucic et al. 2025). Natural parity and a grid
    closed under inversion (even res_alpha) make inversion exact; rotations are exact only up to aliasing of the nonlinearity, which
    shrinks as the grid (`resolution` = (res_beta, res_alpha)) is refined: measure it with
    `mlip.nn.sphere_grid` tests. With scalars only it is the MLP itself (one grid point).

    Shapes: (N, irreps.dim) → (N, irreps.dim), irreps = C×0e + C×1o + ... (block layout of e3nn).
    """

    def __init__(self, irreps: o3.Irreps, hidden: int | None = None, resolution: tuple[int, int] | None = None):
        super().__init__()
        irreps = o3.Irreps(irreps)
        self.channels = irreps[0].mul
        self.lmax = max(ir.l for _, ir in irreps)
        expected = [(self.channels, (l, (-1) ** l)) for l in range(self.lmax + 1)]
        if [(mul, (ir.l, ir.p)) for mul, ir in irreps] != expected:
            raise ValueError(f"the sphere-grid activation needs C copies of every l ≤ lmax of natural parity, "
                             f"got {irreps}")
        self.irreps = irreps
        if self.lmax == 0:
            to_grid, from_grid = torch.ones(1, 1), torch.ones(1, 1)
        else:
            res_beta, res_alpha = resolution or default_resolution(self.lmax)
            to_grid, from_grid = grid_transforms(self.lmax, res_beta, res_alpha)
        self.register_buffer("to_grid", to_grid.to(torch.get_default_dtype()))
        self.register_buffer("from_grid", from_grid.to(torch.get_default_dtype()))
        hidden = hidden or self.channels
        self.mlp = nn.Sequential(nn.Linear(self.channels, hidden), nn.SiLU(), nn.Linear(hidden, self.channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        coefficients = to_channel_layout(x, self.channels, self.lmax)  # (N, C, (lmax+1)²)
        values = self.mlp(torch.einsum("ncd,dp->npc", coefficients, self.to_grid))
        return to_block_layout(torch.einsum("npc,pd->ncd", values, self.from_grid), list(range(self.lmax + 1)))


def default_resolution(lmax: int) -> tuple[int, int]:
    """(res_beta, res_alpha) = (4·lmax + 6) twice: 18 × 18 at lmax = 3 (Facet: 18 × 17), 10 × 10 at lmax = 1.

    An even res_alpha puts the antipode of every grid point on the grid, so inversion is exact.
    """
    return 4 * lmax + 6, 4 * lmax + 6
