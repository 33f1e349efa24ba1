"""Equivariant convolution: messages r → tensor-product weights, summed over neighbours."""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

from mlip.nn.radial import build_radial


class EquivariantConvolution(nn.Module):
    """m_i = (1/n̄) Σ_j TP(h_j, Y(r̂_ij); R(r_ij)), channel-wise ("uvu") paths to every l ≤ lmax.

    Each path and channel has its own radial function R (spline or Bessel+MLP), so
    weights have shape (E, weight_numel). n̄ is the mean neighbour count of the training set.

    Shapes: node_feats (N, irreps_in.dim), edge_sh (E, sh.dim), r (E,) Å → (N, irreps_out.dim).
    """

    def __init__(self, irreps_in: o3.Irreps, sh_irreps: o3.Irreps, lmax: int, cutoff: float, radial: str = "spline",
                 num_basis: int = 8, radial_hidden: tuple[int, ...] = (64, 64), avg_num_neighbors: float = 10.0):
        super().__init__()
        outputs, instructions = [], []
        for i, (mul, ir_in) in enumerate(irreps_in):
            for j, (_, ir_sh) in enumerate(sh_irreps):
                for ir_out in ir_in * ir_sh:
                    if ir_out.l <= lmax and ir_out.p == (-1) ** ir_out.l:
                        instructions.append((i, j, len(outputs), "uvu", True))
                        outputs.append((mul, ir_out))
        irreps_mid = o3.Irreps(outputs)
        irreps_out, permutation, _ = irreps_mid.sort()
        instructions = [(i, j, permutation[k], mode, train) for i, j, k, mode, train in instructions]
        self.irreps_out = irreps_out
        self.tensor_product = o3.TensorProduct(irreps_in, sh_irreps, irreps_out, instructions,
                                               shared_weights=False, internal_weights=False)
        self.radial = build_radial(radial, cutoff, self.tensor_product.weight_numel, num_basis, radial_hidden)
        self.avg_num_neighbors = float(avg_num_neighbors)

    def forward(self, node_feats: torch.Tensor, edge_sh: torch.Tensor, lengths: torch.Tensor,
                receivers: torch.Tensor, senders: torch.Tensor) -> torch.Tensor:
        weights = self.radial(lengths)
        messages = self.tensor_product(node_feats.index_select(0, senders), edge_sh, weights)
        out = torch.zeros(node_feats.shape[0], messages.shape[1], dtype=messages.dtype, device=messages.device)
        return out.index_add_(0, receivers, messages) / self.avg_num_neighbors
