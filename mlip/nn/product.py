"""Many-body features: channel-wise products of the neighbour sum with itself (MACE-style body order)."""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn



def channelwise_product(irreps: o3.Irreps) -> o3.TensorProduct:
    """x ⊗ y channel by channel for all pairs (l1, l2) → l ≤ lmax of natural parity; learned path weights."""
    kinds = {ir for _, ir in irreps}
    outputs, instructions = [], []
    for i, (mul, ir1) in enumerate(irreps):
        for j, (_, ir2) in enumerate(irreps):
            for ir in ir1 * ir2:
                if ir in kinds:
                    instructions.append((i, j, len(outputs), "uuu", True))
                    outputs.append((mul, ir))
    return o3.TensorProduct(irreps, irreps, o3.Irreps(outputs), instructions)


class ProductBasis(nn.Module):
    """B = Linear([A, P₂, P₃, ...]) with P₂ = W₂(A ⊗ A), P_ν = W_ν(P_{ν−1} ⊗ A), ν ≤ `correlation`.

    A is a sum over neighbours (two-body per atom), so a product of ν copies carries
    (ν+1)-body information, as in MACE's symmetric contraction (Batatia et al. 2022). Each ⊗
    is a channel-wise ("uuu") tensor product coupling every pair of l within a channel, with a
    learned weight per path and channel; W_ν maps back to one copy of each l. Exact in e3nn.

    Shapes: (N, irreps.dim) → (N, irreps.dim).
    """

    def __init__(self, irreps: o3.Irreps, correlation: int = 3):
        super().__init__()
        if correlation < 1:
            raise ValueError(f"correlation must be >= 1, got {correlation}")
        self.products = nn.ModuleList()
        self.mixers = nn.ModuleList()
        for _ in range(correlation - 1):
            product = channelwise_product(irreps)
            self.products.append(product)
            self.mixers.append(o3.Linear(product.irreps_out, irreps))  # back to one copy per channel and l
        self.linear = o3.Linear(irreps * correlation, irreps)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        features, current = [a], a
        for product, mixer in zip(self.products, self.mixers):
            current = mixer(product(current, a))
            features.append(current)
        return self.linear(torch.cat(features, dim=-1))
