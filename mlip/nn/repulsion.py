"""Short-range repulsion prior: the Ziegler-Biersack-Littmark (ZBL) universal screened Coulomb potential."""

from __future__ import annotations

import torch
from torch import nn

COULOMB = 14.399645  # e²/(4πε₀), eV·Å
BOHR = 0.52917721  # Å
# Universal screening function φ(x) = Σ c_k exp(−d_k x) (Ziegler, Biersack & Littmark 1985)
PHI_C = (0.18175, 0.50986, 0.28022, 0.02817)
PHI_D = (3.19980, 0.94229, 0.40290, 0.20162)


class ZBLRepulsion(nn.Module):
    """Per-atom energies (eV) of the ZBL pair repulsion, switched off smoothly at short range.

    E_ij = k Z_i Z_j / r · φ(r / a_ij) · s(r / r_ij), a_ij = 0.8854 a₀ / (Z_i^0.23 + Z_j^0.23),
    with s a polynomial envelope (p = 6, value and two derivatives zero at 1) and r_ij the sum of
    the two covalent radii, as MACE's ZBL option: the prior acts only where atoms are closer than
    a bond, so a learned potential cannot let atoms fuse in MD at high temperature, while near
    equilibrium the network sees (almost) no change. Half of each ordered pair goes to each atom.

    Shapes: atomic_numbers (S,) of the species; species (N,), vectors (E, 3) Å, receivers (E,)
            → (N,) eV.
    """

    def __init__(self, atomic_numbers: list[int], exponent: int = 6):
        super().__init__()
        from ase.data import covalent_radii

        z = torch.tensor([float(n) for n in atomic_numbers])
        self.register_buffer("z", z.to(torch.get_default_dtype()))
        self.register_buffer("radius", torch.tensor([float(covalent_radii[n]) for n in atomic_numbers],
                                                    dtype=torch.get_default_dtype()))
        self.exponent = int(exponent)

    def envelope(self, x: torch.Tensor) -> torch.Tensor:
        """1 − (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) − p(p+1)/2 x^(p+2) for x < 1, else 0 (C² at 1)."""
        p = self.exponent
        value = 1 - (p + 1) * (p + 2) / 2 * x**p + p * (p + 2) * x ** (p + 1) - p * (p + 1) / 2 * x ** (p + 2)
        return torch.where(x < 1, value, torch.zeros_like(x))

    def forward(self, species: torch.Tensor, vectors: torch.Tensor, receivers: torch.Tensor,
                senders: torch.Tensor) -> torch.Tensor:
        z_i, z_j = self.z[species[receivers]], self.z[species[senders]]
        r = torch.linalg.vector_norm(vectors, dim=-1)
        screening_length = 0.8854 * BOHR / (z_i**0.23 + z_j**0.23)
        x = r / screening_length
        phi = sum(c * torch.exp(-d * x) for c, d in zip(PHI_C, PHI_D))
        switch = self.envelope(r / (self.radius[species[receivers]] + self.radius[species[senders]]))
        pair = 0.5 * COULOMB * z_i * z_j / r * phi * switch
        return torch.zeros(species.shape[0], dtype=pair.dtype, device=pair.device).index_add(0, receivers, pair)
