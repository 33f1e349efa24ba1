"""Learned equivariance (TransIP-style): a symmetry objective in the network's embedding space.

For a structure x and a random rotation R, the embedding of the rotated copy, z(Rx), should be
predictable from the embedding of the original through a learned map conditioned on the
rotation: z(Rx) ≈ T(R) z(x). Here T(R) = exp(A(R)) is orthogonal (A skew-symmetric, produced by
a small MLP of the rotation matrix, with A(I) = 0 so T(I) = I), so the map keeps distances in
the latent space. The objective combines an alignment term, mean ‖û − ŵ‖² of the unit vectors
û = T(R)z(x)/‖·‖ and ŵ = z(Rx)/‖·‖, with a symmetric InfoNCE term in which the other
structures (or atoms) of the batch are negatives, so that embeddings cannot collapse onto one
point. Embeddings are first projected to a small space (SimCLR-style projection head).

Which details TransIP uses is not published (loss form, temperature, T's architecture); these
choices are ours and measured in benchmarks/learned_equivariance.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class SymmetrySchedule:
    """Weight of the symmetry objective per epoch: linear ramp from 0 over `warmup_epochs`, then
    linear change to `final_fraction` · weight at `max_epochs` (1.0 keeps it constant)."""

    weight: float = 0.0
    warmup_epochs: int = 0
    final_fraction: float = 1.0

    def at(self, epoch: int, max_epochs: int | None) -> float:
        if self.weight <= 0:
            return 0.0
        ramp = min(1.0, (epoch + 1) / self.warmup_epochs) if self.warmup_epochs > 0 else 1.0
        if max_epochs and max_epochs > 1 and self.final_fraction != 1.0:
            progress = min(1.0, epoch / (max_epochs - 1))
            ramp *= 1.0 + (self.final_fraction - 1.0) * progress
        return self.weight * ramp


class RotationConditionedMap(nn.Module):
    """T(R): rotation matrices (B, 3, 3) → orthogonal maps (B, P, P) = exp(A(R)), A(I) = 0."""

    def __init__(self, dim: int, hidden: int = 64):
        super().__init__()
        self.dim = dim
        self.net = nn.Sequential(nn.Linear(9, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, dim * (dim - 1) // 2))
        rows, cols = torch.triu_indices(dim, dim, offset=1)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)

    def forward(self, rotations: torch.Tensor) -> torch.Tensor:
        identity = torch.eye(3, dtype=rotations.dtype, device=rotations.device).reshape(1, 9)
        upper = self.net(rotations.reshape(-1, 9)) - self.net(identity)
        skew = rotations.new_zeros(rotations.shape[0], self.dim, self.dim)
        skew[:, self.rows, self.cols] = upper
        return torch.linalg.matrix_exp(skew - skew.transpose(1, 2))


class SymmetryObjective(nn.Module):
    """Alignment + InfoNCE between T(R)·z(x) and z(Rx).

    Args:
        embedding_dim: width D of the network's per-atom embeddings.
        projection_dim: width P of the space the objective acts in.
        temperature: InfoNCE temperature on cosine similarities.
        level: "structure" (mean-pooled embeddings, as TransIP) or "atom" (every atom a sample).
        max_atoms: at the atom level, at most this many atoms (random) enter the N×N logits.
    """

    def __init__(self, embedding_dim: int, projection_dim: int = 32, temperature: float = 0.1,
                 level: str = "structure", max_atoms: int = 512):
        super().__init__()
        if level not in ("structure", "atom"):
            raise ValueError(f"symmetry level must be 'structure' or 'atom', got '{level}'")
        self.level, self.temperature, self.max_atoms = level, float(temperature), int(max_atoms)
        self.projection = nn.Sequential(nn.Linear(embedding_dim, embedding_dim), nn.SiLU(),
                                        nn.Linear(embedding_dim, projection_dim))
        self.transform = RotationConditionedMap(projection_dim)

    def forward(self, original: torch.Tensor, rotated: torch.Tensor, rotations: torch.Tensor,
                batch_index: torch.Tensor, num_graphs: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """original, rotated: per-atom embeddings (N, D) of x and Rx; rotations (B, 3, 3);
        batch_index (N,) structure of each atom. Returns the loss and its parts."""
        maps = self.transform(rotations)  # (B, P, P)
        if self.level == "structure":
            z, z_rot = (_mean_per_structure(self.projection(h), batch_index, num_graphs) for h in (original, rotated))
        else:
            z, z_rot, maps = self.projection(original), self.projection(rotated), maps[batch_index]
            if z.shape[0] > self.max_atoms:
                keep = torch.randperm(z.shape[0], device=z.device)[: self.max_atoms]
                z, z_rot, maps = z[keep], z_rot[keep], maps[keep]
        predicted = F.normalize(torch.einsum("bij,bj->bi", maps, z), dim=-1)
        target = F.normalize(z_rot, dim=-1)
        align = (predicted - target).pow(2).sum(-1).mean()
        logits = predicted @ target.T / self.temperature
        labels = torch.arange(logits.shape[0], device=logits.device)
        contrast = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
        return align + contrast, {"align": align.detach(), "contrast": contrast.detach()}


def _mean_per_structure(values: torch.Tensor, batch_index: torch.Tensor, num_graphs: int) -> torch.Tensor:
    sums = values.new_zeros(num_graphs, values.shape[1]).index_add_(0, batch_index, values)
    counts = torch.bincount(batch_index, minlength=num_graphs).clamp_min(1).to(values.dtype)
    return sums / counts.unsqueeze(-1)


def random_rotations(count: int, dtype: torch.dtype, device: torch.device | str | None = None) -> torch.Tensor:
    """(count, 3, 3) rotation matrices, uniform (Haar) on SO(3), from torch's global generator."""
    from e3nn import o3

    return o3.rand_matrix(count, dtype=dtype, device=device)
