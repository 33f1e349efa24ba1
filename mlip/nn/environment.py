"""Rotation-invariant summaries of each atom's neighbourhood (power spectra of neighbour densities)."""

from __future__ import annotations

import torch
from torch import nn

from mlip.nn.gather import gather_rows


class NeighbourhoodInvariants(nn.Module):
    """Invariants of the densities A_k,lm(i) = (1/n̄) Σ_j R_k(r_ij) c_jk Y_lm(r̂_ij), for 0 ≤ l ≤ L.

    R_k are learned linear combinations of an (enveloped) radial basis; c_jk are optional per-neighbour
    channel weights (the neighbour's element, or a projection of its features), 1 without them.
    Returned per atom: A_k,00 and, for 1 ≤ l ≤ L, the power spectrum Σ_m A_k,lm², or with `mixing`
    Σ_m A_k,lm (M_l A)_k,lm with a learned channel mixing M_l (initialised to the identity, the power
    spectrum), which reaches cross-channel products A_k·A_q as SOAP's p_kq,l does. Every output is
    exactly invariant under rotations and reflections of the edges (Σ_m of a product of two degree-l
    blocks transformed by the same orthogonal matrix), and three-body: it resolves bond angles.

    Shapes: radial (E, B) enveloped basis, harmonics (E, (L+1)²) real spherical harmonics with
    Y_00 = 1 first (component normalisation), receivers (E,), weights (E, K) or None → (N, K·(L+1)).
    """

    def __init__(self, num_basis: int, channels: int, lmax: int, avg_num_neighbors: float, mixing: bool = False):
        super().__init__()
        if not 1 <= int(lmax) <= 3:
            raise ValueError(f"the neighbourhood invariants need 1 <= lmax <= 3, got {lmax}")
        self.lmax, self.channels, self.avg_num_neighbors = int(lmax), int(channels), float(avg_num_neighbors)
        self.radial = nn.Linear(num_basis, channels, bias=False)
        self.mixing = nn.Parameter(torch.eye(channels).repeat(self.lmax, 1, 1)) if mixing else None

    @property
    def dim(self) -> int:
        """Invariants per atom: K·(L+1)."""
        return self.channels * (self.lmax + 1)

    def forward(self, radial: torch.Tensor, harmonics: torch.Tensor, receivers: torch.Tensor, num_atoms: int,
                weights: torch.Tensor | None = None) -> torch.Tensor:
        channel_weights = self.radial(radial)                                                    # (E, K)
        if weights is not None:
            channel_weights = channel_weights * weights
        sums = channel_weights.new_zeros(num_atoms, self.channels, harmonics.shape[1]).index_add_(
            0, receivers, channel_weights.unsqueeze(-1) * harmonics.unsqueeze(1)) / self.avg_num_neighbors
        invariants = [sums[:, :, 0]]
        for l in range(1, self.lmax + 1):
            block = sums[:, :, l * l:(l + 1) ** 2]                                                # (N, K, 2l+1)
            partner = block if self.mixing is None else torch.einsum("kq,nqm->nkm", self.mixing[l - 1], block)
            invariants.append((block * partner).sum(-1))
        return torch.cat(invariants, dim=-1)


class EnvironmentSublayer(nn.Module):
    """A pre-norm residual sub-layer of a transformer block: x + MLP(invariants of the neighbourhood
    densities whose channel weights c_jk are a linear map of the neighbours' normalised tokens).

    Every layer thereby sees three-body information of its current features (which neighbour, in which
    direction), as an equivariant network's neighbour sum and product do, but reduced to invariants at once.
    Shapes: x (N, dim), radial (E, B), harmonics (E, (L+1)²), receivers/senders (E,) → (N, dim).
    """

    def __init__(self, dim: int, num_basis: int, channels: int, lmax: int, avg_num_neighbors: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.to_channels = nn.Linear(dim, channels)
        self.invariants = NeighbourhoodInvariants(num_basis, channels, lmax, avg_num_neighbors, mixing=True)
        self.mlp = nn.Sequential(nn.Linear(self.invariants.dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, x: torch.Tensor, radial: torch.Tensor, harmonics: torch.Tensor, receivers: torch.Tensor,
                senders: torch.Tensor) -> torch.Tensor:
        weights = gather_rows(self.to_channels(self.norm(x)), senders)  # ATen's scatter in the backward, compiled too
        return x + self.mlp(self.invariants(radial, harmonics, receivers, x.shape[0], weights))
