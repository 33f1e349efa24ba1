"""Rotary position encodings of 3-D positions (RoFormer's RoPE, extended to vectors as in RoPE-Mixed)."""

from __future__ import annotations

import math

import torch
from torch import nn


class Rotary3D(nn.Module):
    """Turns each pair of query/key components by an angle ω_k · r, ω_k ∈ R³ (one per pair and head).

    With q_i and k_j turned by their atoms' positions, q_i · k_j depends on r_j − r_i only, so
    attention logits are exactly translation invariant and carry relative geometry, but not
    rotation invariant: the network learns rotations (augmentation, symmetry objective) or is
    given canonical frames (frame averaging). The frequencies start axis-aligned (x, y, z in
    turn) with wavelengths spread geometrically over [`min_wavelength`, `max_wavelength`] Å and
    are learnable (`learnable=True`), so a head may attend along any direction.

    Shapes: x (N, H, D) with D even, positions (N, 3) Å → (N, H, D).
    """

    def __init__(self, heads: int, head_dim: int, min_wavelength: float = 0.5, max_wavelength: float = 20.0,
                 learnable: bool = True):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"rotary encodings need an even head width, got {head_dim}")
        pairs = head_dim // 2
        wavelengths = torch.logspace(math.log10(min_wavelength), math.log10(max_wavelength), pairs)
        axes = torch.eye(3)[torch.arange(pairs) % 3]                                # (P, 3)
        frequencies = (2 * math.pi / wavelengths)[:, None] * axes
        frequencies = frequencies.unsqueeze(0).repeat(heads, 1, 1)                  # (H, P, 3)
        self.frequencies = nn.Parameter(frequencies, requires_grad=learnable)

    def forward(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        angles = torch.einsum("nc,hpc->nhp", positions, self.frequencies.to(positions.dtype))  # (N, H, P)
        cos, sin = torch.cos(angles), torch.sin(angles)
        first, second = x[..., 0::2], x[..., 1::2]
        turned = torch.stack([first * cos - second * sin, first * sin + second * cos], dim=-1)
        return turned.flatten(-2)
