"""Predictions of a potential over a data set, with error metrics and arrays for parity plots."""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch

from mlip.graph.batch import GraphBatch
from mlip.models.potential import Potential
from mlip.evaluate.metrics import ErrorAccumulator


def evaluate_potential(potential: Potential, batches: Iterable[GraphBatch], stress: bool = False,
                       device: str | torch.device = "cpu",
                       on_batch: Callable[[GraphBatch, dict[str, torch.Tensor]], None] | None = None,
                       ) -> tuple[dict, dict, dict[str, float]]:
    """Run `potential` over `batches`: (labels, predictions, summary).

    `on_batch(batch, predicted)` sees every batch as given (labels in full precision) with its predictions.

    labels/predictions hold energy_per_atom (eV/atom), forces (eV/Å) and, if `stress`, stress
    (eV/Å³) as flat NumPy arrays; summary holds MAE/RMSE in meV units (see `ErrorAccumulator`).
    """
    dtype = potential.dtype
    errors = ErrorAccumulator()
    labels: dict[str, list] = {"energy_per_atom": [], "forces": [], "stress": []}
    predictions: dict[str, list] = {"energy_per_atom": [], "forces": [], "stress": []}
    was_training = potential.training
    potential.eval()
    for given in batches:
        batch = given.for_model(dtype, device)
        out = {k: v.detach() for k, v in potential(batch, forces=True, stress=stress).items()}
        errors.update(out, batch)
        if on_batch is not None:
            on_batch(given, out)  # labels and positions as read (float64), not in the model's dtype
        n = batch.num_atoms.to(batch.energy.dtype)
        labels["energy_per_atom"].append((batch.energy / n).cpu().numpy())
        predictions["energy_per_atom"].append((out["energy"] / n).cpu().numpy())
        labels["forces"].append(batch.forces.cpu().numpy().ravel())
        predictions["forces"].append(out["forces"].cpu().numpy().ravel())
        if stress:
            labels["stress"].append(batch.stress.cpu().numpy().ravel())
            predictions["stress"].append(out["stress"].cpu().numpy().ravel())
    potential.train(was_training)
    join = lambda parts: {k: np.concatenate(v) for k, v in parts.items() if v}  # noqa: E731
    return join(labels), join(predictions), errors.summary()
