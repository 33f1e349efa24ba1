"""Radial functions: distance → tensor-product weights, one weight per path and channel.

`SplineRadial` (default) follows Facet (Miklaucic et al. 2025): a small fixed basis of the
distance with its own learnable linear coefficients for every path and channel, no hidden
layer. The basis here is uniform cubic B-splines whose supports end at the cutoff, so every
weight goes to zero there with two vanishing derivatives and no envelope is needed.
`BesselMLPRadial` is the NequIP/MACE reference: Bessel functions times an envelope, then an MLP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from mlip.nn.cutoff import PolynomialEnvelope


def cubic_bspline(x: torch.Tensor) -> torch.Tensor:
    """The cardinal cubic B-spline on its support [0, 4] (zero outside); C² everywhere."""
    x1, x2, x3 = x - 1.0, x - 2.0, x - 3.0
    pieces = torch.stack([x**3, -3 * x1**3 + 3 * x1**2 + 3 * x1 + 1, 3 * x2**3 - 6 * x2**2 + 4, (1 - x3) ** 3]) / 6.0
    segment = torch.clamp(torch.floor(x), 0, 3).long()
    value = pieces.gather(0, segment.unsqueeze(0)).squeeze(0)
    return torch.where((x >= 0) & (x < 4), value, torch.zeros_like(value))


class BSplineBasis(nn.Module):
    """K uniform cubic B-splines B_k(r) = B((r − t_k) / h), h = r_cut / K, t_k = (k − 3) h.

    Every support ends at or before r_cut, so any combination vanishes at the cutoff with
    its first two derivatives. Shapes: r (E,) Å → (E, K).
    """

    def __init__(self, cutoff: float, num_basis: int = 8):
        super().__init__()
        if num_basis < 4:
            raise ValueError(f"a cubic B-spline basis needs num_basis >= 4, got {num_basis}")
        self.cutoff, self.num_basis = float(cutoff), int(num_basis)
        self.register_buffer("starts", (torch.arange(num_basis, dtype=torch.get_default_dtype()) - 3.0))

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        h = self.cutoff / self.num_basis
        return cubic_bspline(r.unsqueeze(-1) / h - self.starts.to(r.dtype))


class SplineRadial(nn.Module):
    """Per-path, per-channel spline in r: weights = B(r) @ C, C of shape (K, weight_numel).

    Shapes: r (E,) Å → (E, weight_numel).
    """

    def __init__(self, cutoff: float, weight_numel: int, num_basis: int = 8):
        super().__init__()
        self.basis = BSplineBasis(cutoff, num_basis)
        # Σ_k B_k(r)² ≈ 0.48 inside the grid: scale so that the weights start with unit variance.
        self.coefficients = nn.Parameter(torch.randn(num_basis, weight_numel) / math.sqrt(0.48))

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return self.basis(r) @ self.coefficients


class BesselBasis(nn.Module):
    """sqrt(2 / r_cut) sin(ω_n r) / r with ω_n = n π / r_cut, n = 1..K (Klicpera et al. 2020).

    `trainable=True` makes the frequencies ω_n (1/Å) parameters that start at n π / r_cut, as
    NequIP's default Bessel basis does. Shapes: (E,) → (E, K).
    """

    def __init__(self, cutoff: float, num_basis: int = 8, trainable: bool = False):
        super().__init__()
        self.cutoff = float(cutoff)
        frequencies = torch.arange(1, num_basis + 1, dtype=torch.get_default_dtype()) * math.pi / cutoff
        if trainable:
            self.frequencies = nn.Parameter(frequencies)
        else:
            self.register_buffer("frequencies", frequencies)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        r = r.unsqueeze(-1)
        return math.sqrt(2.0 / self.cutoff) * torch.sin(self.frequencies.to(r.dtype) * r) / r


# 1 / sqrt(E[silu(z)²]) for z ~ N(0, 1): restores unit second moment after a SiLU
SILU_SECOND_MOMENT_GAIN = 1.6790


class BesselMLPRadial(nn.Module):
    """Bessel basis × polynomial envelope → bias-free SiLU MLP → weights (zero at the cutoff).

    Shapes: r (E,) Å → (E, weight_numel).
    """

    def __init__(self, cutoff: float, weight_numel: int, num_basis: int = 8, hidden: tuple[int, ...] = (64, 64),
                 envelope_exponent: int = 5, trainable_basis: bool = False):
        super().__init__()
        self.basis = BesselBasis(cutoff, num_basis, trainable_basis)
        self.envelope = PolynomialEnvelope(cutoff, envelope_exponent)
        sizes = [num_basis, *hidden, weight_numel]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b, bias=False))
            if i < len(sizes) - 2:
                layers.append(nn.SiLU())
        self.mlp = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Variance-preserving initialisation (as e3nn's normalised MLP that MACE uses): every
        layer's output has about its input's second moment, so the weights start at order one
        instead of shrinking threefold per layer under torch's default."""
        linears = [layer for layer in self.mlp if isinstance(layer, nn.Linear)]
        with torch.no_grad():  # the basis' second moment over distances spread from 0.2 r_cut to r_cut
            r = torch.linspace(0.2 * self.basis.cutoff, self.basis.cutoff, 256, dtype=self.basis.frequencies.dtype)
            basis_moment = (self.basis(r) * self.envelope(r).unsqueeze(-1)).pow(2).sum(-1).mean().item()
            gains = [1.0 / basis_moment ** 0.5] + [SILU_SECOND_MOMENT_GAIN] * (len(linears) - 1)
            for layer, gain in zip(linears, gains):
                std = gain if layer is linears[0] else gain / layer.in_features ** 0.5
                layer.weight.normal_(0.0, std)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        table = tabulated(self, r)
        if table is not None:
            return table(r)
        return self.mlp(self.basis(r) * self.envelope(r).unsqueeze(-1))


def tabulated(radial: nn.Module, r: torch.Tensor) -> nn.Module | None:
    """The table that stands in for `radial` at distances r: its `inference_table` (set by
    `mlip.nn.radial_table.RadialTables` for compiled inference) while torch.compile traces, in the table's
    dtype, with weights that need no gradient; else None (the radial function itself runs)."""
    table = radial.__dict__.get("inference_table")
    if (table is not None and torch.compiler.is_compiling() and r.dtype == table.coefficients.dtype
            and not any(p.requires_grad for p in radial.parameters())):
        return table
    return None


@dataclass(frozen=True)
class RadialSettings:
    """How edge weights depend on distance, shared by every layer of a network.

    kind: "spline" (Facet-style cubic B-splines, default) or "mlp" (Bessel + MLP, the NequIP/MACE
    reference); cutoff in Å; num_basis functions; hidden widths of the MLP (unused by splines);
    envelope_exponent p of the MLP's polynomial envelope (MACE's 5; a larger p stays near 1 further
    out: at 0.89 r_cut, p = 5 keeps 3 % of a neighbour's weight, p = 8 9 %, p = 12 19 %);
    trainable_basis: the Bessel frequencies train with the network (NequIP's default; MLP only).
    """

    cutoff: float
    kind: str = "spline"
    num_basis: int = 8
    hidden: tuple[int, ...] = (64, 64)
    envelope_exponent: int = 5
    trainable_basis: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("spline", "mlp"):
            raise ValueError(f"radial must be 'spline' or 'mlp', got '{self.kind}'")
        if self.envelope_exponent < 2:
            raise ValueError(f"envelope_exponent must be at least 2 (a smooth cutoff), got {self.envelope_exponent}")
        if self.trainable_basis and self.kind != "mlp":
            raise ValueError("trainable_basis applies to the Bessel basis of radial 'mlp' only "
                             "(the spline radial's knots are fixed)")
        object.__setattr__(self, "hidden", tuple(self.hidden))

    def build(self, weight_numel: int) -> nn.Module:
        """A radial module r (E,) Å → (E, weight_numel), zero at the cutoff."""
        if self.kind == "spline":
            return SplineRadial(self.cutoff, weight_numel, self.num_basis)
        return BesselMLPRadial(self.cutoff, weight_numel, self.num_basis, self.hidden, self.envelope_exponent,
                               self.trainable_basis)
