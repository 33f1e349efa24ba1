"""A radial function tabulated for compiled float32 inference: piecewise quintic Hermite in r.

The medium model's radial MLP (8 Bessel functions → 64 → 64 → paths·C, per layer) cost ~15 % of a
compiled energy + forces call at Si 512 (benchmarks/README.md "What ≤ 50 µs/atom-step would take"):
three matrix products per bond forward and six backward. With frozen weights the MLP is a fixed smooth
function of one variable, so it is read once onto a grid of knots (values, slopes and curvatures, computed
in float64) and evaluated between knots as a quintic: one gather of six coefficient rows and five
multiply-adds per weight, which Inductor fuses with its derivative and with the neighbour sums that read
it. The table is C², and forces stay the exact derivatives of the tabulated energy.

The knot spacing is chosen, not fixed: it halves until the table's largest errors in values and in slopes
at the quarter points and midpoints of every piece (where a Hermite interpolant errs most) are both below
`tolerance` relative to the function's largest value and slope (default 2⁻²⁴ ≈ 6e-8, float32's rounding
unit), so a float32 model cannot tell the table from its MLP. Float64 calls never use it. Within the first
piece (r < r_cut / pieces, ~0.005 Å, closer than atoms come) the error is up to ~1e-6 (`hermite_coefficients`).
"""

from __future__ import annotations

import copy
import logging
from typing import Callable

import torch
from torch import nn

from mlip.nn.frozen import weight_key
from mlip.nn.radial import BesselMLPRadial

FLOAT32_ROUNDING = 2.0 ** -24

logger = logging.getLogger(__name__)


CURVATURE_STEP = 1e-4  # Å: central differences of exact slopes, error ~ δ² f⁗ / 6 ≈ 1e-9 of the scale


def derivatives(function: Callable[[torch.Tensor], torch.Tensor],
                r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """f(r), df/dr and d²f/dr², each (K, W), of a radial function at distances r (K,) Å (r > 1e-4 Å).
    The function maps each distance on its own, so one forward-mode pass with a tangent of ones gives every
    slope; the curvature is the central difference of exact slopes at r ± 1e-4 Å (SiLU's derivative has no
    forward-mode rule, so forward over forward is not available)."""
    def value_and_slope(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.func.jvp(function, (x,), (torch.ones_like(x),))

    with torch.no_grad():
        values, slopes = value_and_slope(r)
        curvatures = (value_and_slope(r + CURVATURE_STEP)[1]
                      - value_and_slope(r - CURVATURE_STEP)[1]) / (2 * CURVATURE_STEP)
    return values, slopes, curvatures


class TabulatedRadial(nn.Module):
    """f(r) ≈ Σ_k a_k t^k (k ≤ 5), t = r/h − j in [0, 1] on piece j = ⌊r/h⌋, h = r_cut / pieces: the quintic
    Hermite interpolant of f from its values, slopes and curvatures at the knots (C², so forces are smooth).

    Built from `function` (r (E,) Å → (E, W), smooth on (0, r_cut], zero beyond, e.g. `BesselMLPRadial`)
    by `build`; r is clamped to [0, r_cut]. Shapes: r (E,) Å → (E, W) in the table's dtype.

    Example:
        table = TabulatedRadial.build(radial_in_float64, cutoff=5.0)
        weights = table(lengths)           # ≈ radial(lengths) to float32 rounding, values and slopes
    """

    def __init__(self, coefficients: torch.Tensor, cutoff: float, errors: tuple[float, float] = (0.0, 0.0)):
        super().__init__()
        self.register_buffer("coefficients", coefficients)  # (pieces, 6, W)
        self.cutoff, self.pieces = float(cutoff), int(coefficients.shape[0])
        self.errors = errors  # (value, slope) relative errors measured by `build`

    @classmethod
    def build(cls, function: Callable[[torch.Tensor], torch.Tensor], cutoff: float,
              tolerance: float = FLOAT32_ROUNDING, dtype: torch.dtype = torch.float32,
              pieces: int = 64, max_pieces: int = 8192) -> "TabulatedRadial":
        """Tabulate `function` (a float64 function) with the fewest pieces, doubling from `pieces`, whose
        value and slope errors are both at most `tolerance` relative to the largest value and slope; a
        ValueError when `max_pieces` do not reach it (a function too rough to tabulate)."""
        while True:
            coefficients = hermite_coefficients(function, cutoff, pieces)
            errors = relative_errors(function, coefficients, cutoff)
            if max(errors) <= tolerance:
                return cls(coefficients.to(dtype), cutoff, errors)
            if pieces * 2 > max_pieces:
                raise ValueError(f"the radial function needs more than {max_pieces} pieces to be tabulated to "
                                 f"{tolerance:.1e} (relative errors {errors[0]:.1e} in values, {errors[1]:.1e} in "
                                 f"slopes with {pieces}); use it untabulated")
            pieces *= 2

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        x = torch.clamp(r, 0.0, self.cutoff) * (self.pieces / self.cutoff)
        piece = torch.clamp(x.detach().floor(), max=self.pieces - 1)
        t = (x - piece).unsqueeze(-1).to(self.coefficients.dtype)
        a = self.coefficients.index_select(0, piece.long())                    # (E, 6, W)
        return a[:, 0] + t * (a[:, 1] + t * (a[:, 2] + t * (a[:, 3] + t * (a[:, 4] + t * a[:, 5]))))


def hermite_coefficients(function: Callable[[torch.Tensor], torch.Tensor], cutoff: float,
                         pieces: int) -> torch.Tensor:
    """(pieces, 6, W) float64 power coefficients in t of the quintic Hermite interpolant of `function` on
    `pieces` equal intervals of [0, r_cut]. The first knot's data are taken at 2e-4 Å (a Bessel basis is 0/0 at
    0, and the curvature's differences need r − 1e-4 Å > 0); the shift f″·r²/2 ~ 1e-6 of the scale stays
    in the first piece, closer than atoms come."""
    knots = torch.linspace(0.0, cutoff, pieces + 1, dtype=torch.float64).clamp(min=2 * CURVATURE_STEP)
    values, slopes, curvatures = derivatives(function, knots)
    h = cutoff / pieces
    f0, f1 = values[:-1], values[1:]
    d0, d1 = slopes[:-1] * h, slopes[1:] * h                  # derivatives in units of t
    s0, s1 = curvatures[:-1] * h * h, curvatures[1:] * h * h
    df = f1 - f0
    return torch.stack([f0, d0, s0 / 2,
                        10 * df - 6 * d0 - 4 * d1 - (3 * s0 - s1) / 2,
                        -15 * df + 8 * d0 + 7 * d1 + (3 * s0 - 2 * s1) / 2,
                        6 * df - 3 * (d0 + d1) - (s0 - s1) / 2], dim=1)


def relative_errors(function: Callable[[torch.Tensor], torch.Tensor], coefficients: torch.Tensor,
                    cutoff: float) -> tuple[float, float]:
    """Largest |table − function| and |table′ − function′| at the quarter points and midpoints of every
    piece but the first (where a Hermite interpolant errs most), over the function's largest |value| and
    |slope| there. The first piece, r < r_cut / pieces (~0.005 Å, closer than atoms come), is left out: its
    knot at 0 takes data at 2e-4 Å (`hermite_coefficients`)."""
    pieces = coefficients.shape[0]
    table = TabulatedRadial(coefficients, cutoff)
    r = ((torch.arange(1, pieces, dtype=torch.float64).unsqueeze(1)
          + torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)) * (cutoff / pieces)).reshape(-1)
    values, slopes, _ = derivatives(function, r)
    table_values, table_slopes, _ = derivatives(table, r)
    return tuple(((approximate - exact).abs().max() / exact.abs().max().clamp(min=1e-300)).item()
                 for approximate, exact in ((table_values, values), (table_slopes, slopes)))


class RadialTables:
    """Tables for every `BesselMLPRadial` of `network`, for its compiled float32 calls, kept in step with the
    weights: `refresh()` (before each call) rebuilds a table in place when its radial's weights changed (their
    version counters, storage, dtype or device). A radial uses its table only under torch.compile, in the
    table's dtype, with weights that need no gradient (`BesselMLPRadial.forward`), so training and float64
    calls run the MLP. The tables are not submodules: model files and state dicts are unchanged. A radial
    too rough to tabulate keeps its MLP; new weights that a table of the compiled resolution cannot follow
    raise a ValueError (compile again) rather than run a coarser table.
    """

    def __init__(self, network: nn.Module, tolerance: float = FLOAT32_ROUNDING, dtype: torch.dtype = torch.float32):
        self.radials = [m for m in network.modules() if isinstance(m, BesselMLPRadial)]
        self.tolerance, self.dtype, self.keys = tolerance, dtype, [None] * len(self.radials)
        for radial in self.radials:
            object.__setattr__(radial, "inference_table", None)
        self.refresh()

    @staticmethod
    def applies_to(network: nn.Module) -> bool:
        """Whether `network` has a radial function that a table can stand in for."""
        return any(isinstance(m, BesselMLPRadial) for m in network.modules())

    def refresh(self) -> None:
        """Build missing tables and rebuild stale ones (same pieces, so compiled graphs stay valid), for the
        radials whose weights are in the tables' dtype (the others run their MLP anyway)."""
        for i, radial in enumerate(self.radials):
            weight = next(radial.parameters())
            key = tuple(weight_key(t) for t in (*radial.parameters(), *radial.buffers()))
            if weight.dtype != self.dtype or key == self.keys[i]:
                continue
            reference = copy.deepcopy(radial).to(device="cpu", dtype=torch.float64)
            object.__setattr__(reference, "inference_table", None)
            table, self.keys[i] = radial.inference_table, key
            if table is None:
                try:
                    table = TabulatedRadial.build(reference, radial.basis.cutoff, self.tolerance, self.dtype)
                except ValueError as error:  # too rough to tabulate: this radial runs its MLP
                    logger.info("radial function %d runs untabulated: %s", i, error)
                    continue
                object.__setattr__(radial, "inference_table", table.to(weight.device))
                continue
            coefficients = hermite_coefficients(reference, table.cutoff, table.pieces)
            errors = relative_errors(reference, coefficients, table.cutoff)
            if max(errors) > self.tolerance:
                raise ValueError(f"the new weights' radial function {i} needs a finer table than the compiled one "
                                 f"(relative errors {errors[0]:.1e} in values, {errors[1]:.1e} in slopes with "
                                 f"{table.pieces} pieces); compile the model again (compile_potential)")
            table.errors = errors
            table.coefficients.copy_(coefficients)
