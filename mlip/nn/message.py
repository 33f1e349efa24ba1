"""Equivariant convolution: messages r → tensor-product weights, summed over neighbours."""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

from mlip.nn.irreps import coupling_paths, coupling_tensor, to_block_layout, to_channel_layout
from mlip.nn.radial import build_radial


class EquivariantConvolution(nn.Module):
    """m_i = (1/n̄) Σ_j Σ_paths R_p,c(r_ij) [h_j,c ⊗ Y(r̂_ij)]_p, one path per (l_in, l_sh → l_out).

    A channel-wise ("uvu") tensor product of sender features (C copies of every l ≤ lmax_in,
    natural parity) with the edge's spherical harmonics (l ≤ lmax_sh) to every l_out ≤
    `lmax`, each path and channel weighted by its own radial function R (spline or
    Bessel+MLP). n̄ is the mean neighbour count of the training set.

    Fused for speed: the Clebsch-Gordan coefficients of all paths form one dense tensor, so an
    edge costs one small matmul with its harmonics and one batched product with its features
    (no Python loop over paths); exact, as e3nn's `TensorProduct`. The output keeps every path
    as its own copy, in e3nn block layout sorted by l (`irreps_out`), for a Linear to mix.

    Shapes: node_feats (N, irreps_in.dim), edge_sh (E, sh.dim), r (E,) Å → (N, irreps_out.dim).
    """

    def __init__(self, irreps_in: o3.Irreps, sh_irreps: o3.Irreps, lmax: int, cutoff: float, radial: str = "spline",
                 num_basis: int = 8, radial_hidden: tuple[int, ...] = (64, 64), avg_num_neighbors: float = 10.0):
        super().__init__()
        irreps_in = o3.Irreps(irreps_in)
        self.channels = irreps_in[0].mul
        self.lmax_in = max(ir.l for _, ir in irreps_in)
        lmax_sh = max(ir.l for _, ir in o3.Irreps(sh_irreps))
        if [(m, ir.l, ir.p) for m, ir in irreps_in] != [(self.channels, l, (-1) ** l) for l in range(self.lmax_in + 1)]:
            raise ValueError(f"convolution input must be C copies of every l ≤ lmax of natural parity, got {irreps_in}")
        paths = coupling_paths(self.lmax_in, lmax_sh, lmax)
        coupling, path_of_column = coupling_tensor(paths, self.lmax_in, lmax_sh)  # (dim_in, dim_sh, n_out)
        dim_in, dim_sh, n_out = coupling.shape
        self.register_buffer("coupling", coupling.permute(1, 0, 2).reshape(dim_sh, dim_in * n_out)
                             .to(torch.get_default_dtype()))
        self.register_buffer("path_of_column", path_of_column, persistent=False)
        self.dim_in, self.n_out, self.paths = dim_in, n_out, paths
        self.irreps_out = o3.Irreps([(self.channels, (l3, (-1) ** l3)) for _, _, l3 in paths])
        self.weight_numel = len(paths) * self.channels
        self.radial = build_radial(radial, cutoff, self.weight_numel, num_basis, radial_hidden)
        self.avg_num_neighbors = float(avg_num_neighbors)

    def forward(self, node_feats: torch.Tensor, edge_sh: torch.Tensor, lengths: torch.Tensor,
                receivers: torch.Tensor, senders: torch.Tensor) -> torch.Tensor:
        n_edges, c = edge_sh.shape[0], self.channels
        weights = self.radial(lengths).reshape(n_edges, c, len(self.paths)).index_select(2, self.path_of_column)
        couplings = (edge_sh @ self.coupling).reshape(n_edges, self.dim_in, self.n_out)    # (E, dim_in, n_out)
        features = to_channel_layout(node_feats, c, self.lmax_in).index_select(0, senders)  # (E, C, dim_in)
        if self.dim_in == 1:  # scalar inputs (first layer): a broadcast product, no batched matmul
            messages = features * couplings * weights
        else:
            messages = torch.bmm(features, couplings) * weights                             # (E, C, n_out)
        summed = torch.zeros(node_feats.shape[0], c, self.n_out, dtype=messages.dtype, device=messages.device)
        summed = summed.index_add_(0, receivers, messages) / self.avg_num_neighbors
        return to_block_layout(summed, [l3 for _, _, l3 in self.paths])  # one C×(2l+1) block per path
