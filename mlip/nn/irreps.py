"""Small helpers over e3nn irreps."""

from __future__ import annotations

from e3nn import o3


def hidden_irreps(channels: int, lmax: int) -> o3.Irreps:
    """`channels` copies of every l ≤ lmax with its natural parity (-1)^l: e.g. 32x0e+32x1o+32x2e."""
    return o3.Irreps([(channels, (l, (-1) ** l)) for l in range(lmax + 1)])


def keep_irs(irreps: o3.Irreps, allowed: o3.Irreps) -> list[o3.Irrep]:
    """The irreps of `irreps` whose type appears in `allowed` (for e3nn's filter_ir_out)."""
    kinds = {ir for _, ir in allowed}
    return [ir for _, ir in irreps if ir in kinds]
