"""Smooth cutoff envelope."""

from __future__ import annotations

import torch
from torch import nn


class PolynomialEnvelope(nn.Module):
    """u(r) = 1 − (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) − p(p+1)/2 x^(p+2), x = r / r_cut, and 0 beyond.

    Goes to zero at the cutoff with p − 1 vanishing derivatives (Klicpera et al. 2020, DimeNet).

    Args:
        cutoff: r_cut, Å. p: polynomial order (MACE and NequIP use 5 or 6).
    Shapes: r (E,) Å → (E,).
    """

    def __init__(self, cutoff: float, p: int = 5):
        super().__init__()
        self.cutoff, self.p = float(cutoff), int(p)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        x = r / self.cutoff
        p = self.p
        value = (1.0 - (p + 1) * (p + 2) / 2 * x**p + p * (p + 2) * x ** (p + 1) - p * (p + 1) / 2 * x ** (p + 2))
        return torch.where(x < 1.0, value, torch.zeros_like(value))
