"""Small helpers over e3nn irreps."""

from __future__ import annotations

import torch
from e3nn import o3


def hidden_irreps(channels: int, lmax: int) -> o3.Irreps:
    """`channels` copies of every l ≤ lmax with its natural parity (-1)^l: e.g. 32x0e+32x1o+32x2e."""
    return o3.Irreps([(channels, (l, (-1) ** l)) for l in range(lmax + 1)])


def keep_irs(irreps: o3.Irreps, allowed: o3.Irreps) -> list[o3.Irrep]:
    """The irreps of `irreps` whose type appears in `allowed` (for e3nn's filter_ir_out)."""
    kinds = {ir for _, ir in allowed}
    return [ir for _, ir in irreps if ir in kinds]


def to_channel_layout(x: torch.Tensor, channels: int, lmax: int) -> torch.Tensor:
    """e3nn block layout [C×0e | C×1o | ...] (rows, C·(lmax+1)²) → (rows, C, (lmax+1)²)."""
    blocks, start = [], 0
    for l in range(lmax + 1):
        blocks.append(x[:, start:start + channels * (2 * l + 1)].reshape(x.shape[0], channels, 2 * l + 1))
        start += channels * (2 * l + 1)
    return torch.cat(blocks, dim=-1)


def to_block_layout(x: torch.Tensor, ls: list[int]) -> torch.Tensor:
    """(rows, C, Σ(2l+1)) with consecutive pieces of degree `ls` → e3nn block layout (rows, C·Σ(2l+1))."""
    blocks, start = [], 0
    for l in ls:
        blocks.append(x[:, :, start:start + 2 * l + 1].reshape(x.shape[0], -1))
        start += 2 * l + 1
    return torch.cat(blocks, dim=-1)
