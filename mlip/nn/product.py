"""Many-body features: channel-wise products of the neighbour sum with itself (MACE-style body order)."""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

from mlip.nn.irreps import coupling_paths, coupling_tensor, to_block_layout, to_channel_layout


class ChannelwiseProduct(nn.Module):
    """x ⊗ y channel by channel ("uuu"): every pair (l1, l2) → l3 ≤ `lmax_out` of natural parity,
    each path and channel scaled by a learned weight (shared, or per element with `num_species`).

    Fused like `EquivariantConvolution`: one dense Clebsch-Gordan matrix over all paths, so a
    call is an outer product per channel and one matrix product. `symmetric=True` (x is y)
    keeps only l1 ≤ l2. Output: one C×(2l3+1) block per path (`irreps_out`), e3nn layout.

    Shapes: x (N, C·(lmax1+1)²), y (N, C·(lmax2+1)²), species_onehot (N, S) → (N, irreps_out.dim).
    """

    def __init__(self, channels: int, lmax1: int, lmax2: int, lmax_out: int, symmetric: bool = False,
                 num_species: int | None = None):
        super().__init__()
        self.channels, self.lmax1, self.lmax2 = channels, lmax1, lmax2
        self.paths = coupling_paths(lmax1, lmax2, lmax_out, symmetric)
        coupling, path_of_column = coupling_tensor(self.paths, lmax1, lmax2)
        self.register_buffer("coupling", coupling.reshape(-1, coupling.shape[-1]).to(torch.get_default_dtype()))
        self.register_buffer("path_of_column", path_of_column, persistent=False)
        self.irreps_out = o3.Irreps([(channels, (l3, (-1) ** l3)) for _, _, l3 in self.paths])
        rows = 1 if num_species is None else num_species
        self.weights = nn.Parameter(torch.randn(rows, channels, len(self.paths)))
        self.per_species = num_species is not None

    def forward(self, x: torch.Tensor, y: torch.Tensor, species_onehot: torch.Tensor | None = None) -> torch.Tensor:
        n, c = x.shape[0], self.channels
        x = to_channel_layout(x, c, self.lmax1)
        y = to_channel_layout(y, c, self.lmax2)
        outer = (x.unsqueeze(-1) * y.unsqueeze(-2)).reshape(n, c, -1)
        out = outer @ self.coupling                                              # (N, C, n_out)
        if self.per_species:
            weights = (species_onehot @ self.weights.reshape(self.weights.shape[0], -1)).reshape(n, c, -1)
        else:
            weights = self.weights.expand(n, -1, -1)
        out = out * weights.index_select(2, self.path_of_column)
        return to_block_layout(out, [l3 for _, _, l3 in self.paths])


class ProductBasis(nn.Module):
    """B = Linear([A, P₂, P₃, ...]) with P₂ = W₂(A ⊗ A), P_ν = W_ν(P_{ν−1} ⊗ A), ν ≤ `correlation`.

    A is a sum over neighbours (two-body per atom), so a product of ν copies carries
    (ν+1)-body information, as in MACE's symmetric contraction (Batatia et al. 2022). Each ⊗
    is a channel-wise ("uuu") tensor product coupling every pair of l within a channel
    (`ChannelwiseProduct`); W_ν maps the paths back to one copy of each l. Exact.

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
        channels, lmax_in = irreps_in[0].mul, max(ir.l for _, ir in irreps_in)
        lmax_out = max(ir.l for _, ir in irreps_out)
        self.products = nn.ModuleList()
        self.mixers = nn.ModuleList()
        for order in range(2, correlation + 1):
            last = order == correlation
            product = ChannelwiseProduct(channels, lmax_in, lmax_in, lmax_out if last else lmax_in,
                                         symmetric=order == 2, num_species=num_species if species_weights else None)
            self.products.append(product)
            self.mixers.append(o3.Linear(product.irreps_out, irreps_out if last else irreps_in))
        kept = o3.Irreps([(mul, ir) for mul, ir in irreps_in if ir in {i for _, i in irreps_out}])
        self.keep = _slices(irreps_in, kept)
        self.linear = o3.Linear(kept + (irreps_in * (correlation - 2) if correlation > 2 else o3.Irreps(""))
                                + (irreps_out if correlation > 1 else o3.Irreps("")), irreps_out)

    def forward(self, a: torch.Tensor, species_onehot: torch.Tensor | None = None) -> torch.Tensor:
        features, current = [a[:, self.keep]], a
        for product, mixer in zip(self.products, self.mixers):
            current = mixer(product(current, a, species_onehot))
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
