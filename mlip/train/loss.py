"""Weighted energy / forces / stress loss with missing labels (NaN) masked out."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mlip.data.manifest import describe_labels
from mlip.graph.batch import GraphBatch

FORCE_LOSSES = ("mse", "huber", "l2norm")


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms: energy per atom (of the squared error, eV⁻²), forces (of the
    `forces_loss` term, see `force_term`), stress components (of the squared error, (eV/Å³)⁻²).

    forces_loss: "mse" (squared force-component error, eV²/Å², MACE's default), "huber" (equal
    to the squared error below `huber_delta` eV/Å, linear above: 2δ|e| − δ²) or "l2norm" (the
    length of each atom's force-error vector, eV/Å: the loss of fairchem's force heads, "l2mae").
    """

    energy: float = 1.0
    forces: float = 100.0
    stress: float = 0.0
    forces_loss: str = "mse"
    huber_delta: float = 0.01

    def __post_init__(self) -> None:
        if self.forces_loss not in FORCE_LOSSES:
            raise ValueError(f"forces_loss must be one of {', '.join(FORCE_LOSSES)}, got '{self.forces_loss}'")
        if not self.huber_delta > 0:
            raise ValueError(f"huber_delta must be positive (eV/Å), got {self.huber_delta}")


def check_labels_for_loss(labels: dict[str, int], weights: LossWeights, source: str) -> None:
    """Refuse training data with none of the labels the loss weighs (a ValueError saying how to name them).

    labels: structures carrying each label, as a shard manifest counts them ({"energy": n, "forces": n,
    "stress": n}). Files whose labels have other names (MACE's REF_energy) read as unlabelled, and training
    on them would fit nothing."""
    weighted = {"energy": weights.energy, "forces": weights.forces, "stress": weights.stress}
    if any(weight > 0 and labels.get(name, 0) > 0 for name, weight in weighted.items()):
        return
    raise ValueError(f"the training data {source} has no label the loss uses: labelled {describe_labels(labels)}; "
                     f"loss weights energy {weights.energy:g}, forces {weights.forces:g}, stress {weights.stress:g}. "
                     "If the files name their labels differently, give the names (MACE's files: --data.energy_key "
                     "REF_energy --data.forces_key REF_forces; for a shard folder, mlip-preprocess --energy-key "
                     "REF_energy --forces-key REF_forces)")


def unused_stress_note(labels: dict[str, int], weights: LossWeights) -> None:
    """One line when the training data carry stresses that the loss does not weigh (stress_weight 0)."""
    if weights.stress == 0 and labels.get("stress", 0) > 0:
        from lightning.pytorch.utilities import rank_zero_info

        rank_zero_info(f"{labels['stress']} training structures carry stresses, which this run does not fit; "
                       "--model.stress_weight 10 fits them too (the accuracy front's setting, MACE's --stress_weight)")


def force_term(error: torch.Tensor, kind: str, delta: float) -> torch.Tensor:
    """Per-atom force loss (N,) from the force errors `error` (N, 3) eV/Å; `kind` as in `LossWeights`."""
    if kind == "l2norm":  # the gradient of |e| is undefined at 0: the small floor keeps it finite
        return (error.pow(2).sum(dim=1) + 1e-12).sqrt()
    if kind == "huber":  # 2 × torch's Huber, so that it equals the squared error below δ
        return 2.0 * torch.nn.functional.huber_loss(error, torch.zeros_like(error), reduction="none",
                                                    delta=delta).mean(dim=1)
    return error.pow(2).mean(dim=1)


def _masked_mean(squared: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    total = (squared * weight * mask).sum()
    count = (weight * mask).sum()
    return total / count.clamp_min(1e-12)


def weighted_loss(predicted: dict[str, torch.Tensor], batch: GraphBatch,
                  weights: LossWeights) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Σ_w w · term, each over the structures (or atoms) that carry that label, with per-structure weights.

    Returns the loss and its parts for logging, each an unweighted mean squared error whatever
    the force term (eV²/atom², eV²/Å², (eV/Å³)²).
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
        error = torch.nan_to_num(predicted["forces"] - batch.forces)
        parts["forces"] = _masked_mean(error.pow(2).mean(dim=1), has_forces, atom_weight)
        term = parts["forces"] if weights.forces_loss == "mse" else _masked_mean(
            force_term(error, weights.forces_loss, weights.huber_delta), has_forces, atom_weight)
        loss = loss + weights.forces * term
    if "stress" in predicted and weights.stress > 0:
        has_stress = torch.isfinite(batch.stress).all(dim=(1, 2)) & torch.isfinite(predicted["stress"]).all(dim=(1, 2))
        squared = torch.nan_to_num(predicted["stress"] - batch.stress).pow(2).mean(dim=(1, 2))
        parts["stress"] = _masked_mean(squared, has_stress, batch.weight)
        loss = loss + weights.stress * parts["stress"]
    return loss, parts
