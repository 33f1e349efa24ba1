"""`TransformerNetwork`: a plain transformer over atoms (no equivariant layers) → per-atom energies.

Atoms are tokens: element embedding + a geometric embedding built from the raw relative vectors
to the neighbours (so the network is *not* rotation invariant by construction: it has to learn
it, TransIP-style, from data augmentation or an embedding-space symmetry loss). Attention runs
over the neighbour graph only (`NeighborAttention`); the features of each edge, an MLP of its
direction and a spline radial basis of its length, give every layer's attention bias and edge
values, so cost is linear in atoms and periodic cells work.
Translation and permutation invariance and supercell consistency are exact.
"""

from __future__ import annotations

import torch
from torch import nn

from mlip.nn.attention import NeighborAttention
from mlip.nn.cutoff import PolynomialEnvelope
from mlip.nn.radial import BSplineBasis


class TransformerBlock(nn.Module):
    """Pre-norm block: x + Attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 2):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = NeighborAttention(dim, heads, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.SiLU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x, edge_features, envelope, receivers, senders):
        x = x + self.attention(self.norm1(x), edge_features, envelope, receivers, senders)
        return x + self.mlp(self.norm2(x))


class TransformerNetwork(nn.Module):
    """Shapes: species (N,), edge_vectors (E, 3) Å, receivers/senders (E,) → per-atom energies (N,).

    `embedding(...)` returns the per-atom token embeddings before the readout (N, dim), the
    space where a learned-equivariance objective acts.
    """

    def __init__(self, num_species: int, cutoff: float, dim: int = 64, heads: int = 4, num_layers: int = 3,
                 num_basis: int = 8, avg_num_neighbors: float = 10.0):
        super().__init__()
        self.cutoff, self.avg_num_neighbors, self.embedding_dim = float(cutoff), float(avg_num_neighbors), dim
        self.species_embedding = nn.Embedding(num_species, dim)
        self.basis = BSplineBasis(cutoff, num_basis)
        self.envelope = PolynomialEnvelope(cutoff)
        # Geometric embedding from raw relative vectors: (unit vector components, radial basis) → dim.
        self.geometry = nn.Sequential(nn.Linear(3 + num_basis, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads) for _ in range(num_layers))
        self.readout = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, 1))

    def embedding(self, species: torch.Tensor, edge_vectors: torch.Tensor, receivers: torch.Tensor,
                  senders: torch.Tensor) -> torch.Tensor:
        lengths = torch.linalg.vector_norm(edge_vectors, dim=-1)
        basis = self.basis(lengths)
        envelope = self.envelope(lengths)
        directions = edge_vectors / lengths.clamp_min(1e-9).unsqueeze(-1)
        edge_features = self.geometry(torch.cat([directions, basis], dim=-1))  # (E, dim)
        x = self.species_embedding(species)
        per_edge = edge_features * envelope.unsqueeze(-1)
        x = x + torch.zeros_like(x).index_add_(0, receivers, per_edge) / self.avg_num_neighbors
        for block in self.blocks:
            x = block(x, edge_features, envelope, receivers, senders)
        return x

    def head(self, embedding: torch.Tensor) -> torch.Tensor:
        """Per-atom energies (N,) from the token embeddings (N, dim)."""
        return self.readout(embedding).squeeze(-1)

    def forward(self, species: torch.Tensor, edge_vectors: torch.Tensor, receivers: torch.Tensor,
                senders: torch.Tensor) -> torch.Tensor:
        return self.head(self.embedding(species, edge_vectors, receivers, senders))
