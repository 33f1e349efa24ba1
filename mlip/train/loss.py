"""Weighted energy / forces / stress loss with missing labels (NaN) masked out."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mlip.graph.batch import GraphBatch


@dataclass(frozen=True)
class LossWeights:
    """Weights of the mean squared errors: energy per atom (eV²), force components (eV²/Å²),
    stress components ((eV/Å³)²)."""

    energy: float = 1.0
    forces: float = 100.0
    stress: float = 0.0


def _masked_mean(squared: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    total = (squared * weight * mask).sum()
    count = (weight * mask).sum()
    return total / count.clamp_min(1e-12)


def weighted_loss(predicted: dict[str, torch.Tensor], batch: GraphBatch,
                  weights: LossWeights) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Σ_w w · MSE, each over the structures (or atoms) that carry that label, with per-structure weights.

    Returns the loss and its parts (each an unweighted MSE) for logging.
    """
    parts: dict[str, torch.Tensor] = {}
    n_atoms = batch.num_atoms.to(predicted["energy"].dtype)
    energy_error = (predicted["energy"] - batch.energy) / n_atoms
    has_energy = torch.isfinite(batch.energy)
    parts["energy"] = _masked_mean(torch.nan_to_num(energy_error) ** 2, has_energy, batch.weight)
    loss = weights.energy * parts["energy"]
    if "forces" in predicted:
        has_forces = torch.isfinite(batch.forces).all(dim=1)
        atom_weight = batch.weight[batch.batch]
        squared = torch.nan_to_num(predicted["forces"] - batch.forces).pow(2).mean(dim=1)
        parts["forces"] = _masked_mean(squared, has_forces, atom_weight)
        loss = loss + weights.forces * parts["forces"]
    if "stress" in predicted and weights.stress > 0:
        has_stress = torch.isfinite(batch.stress).all(dim=(1, 2)) & torch.isfinite(predicted["stress"]).all(dim=(1, 2))
        squared = torch.nan_to_num(predicted["stress"] - batch.stress).pow(2).mean(dim=(1, 2))
        parts["stress"] = _masked_mean(squared, has_stress, batch.weight)
        loss = loss + weights.stress * parts["stress"]
    return loss, parts
