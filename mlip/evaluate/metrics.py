"""Error sums over a data set (MAE and RMSE of energies, energies per atom, forces, stress)."""

from __future__ import annotations

import math

import torch

from mlip.graph.batch import GraphBatch


class ErrorAccumulator:
    """Adds up absolute and squared errors batch by batch; `summary()` gives MAE/RMSE.

    Units: energy meV (per structure and per atom), forces meV/Å (per component), stress meV/Å³.
    """

    QUANTITIES = ("energy", "energy_per_atom", "forces", "stress")

    def __init__(self) -> None:
        self.sums = {q: [0.0, 0.0, 0] for q in self.QUANTITIES}

    def _add(self, name: str, error: torch.Tensor) -> None:
        error = error[torch.isfinite(error)].detach().double()
        entry = self.sums[name]
        entry[0] += float(error.abs().sum())
        entry[1] += float((error**2).sum())
        entry[2] += int(error.numel())

    def update(self, predicted: dict[str, torch.Tensor], batch: GraphBatch) -> None:
        energy_error = (predicted["energy"] - batch.energy) * 1e3
        self._add("energy", energy_error)
        self._add("energy_per_atom", energy_error / batch.num_atoms)
        if "forces" in predicted:
            self._add("forces", (predicted["forces"] - batch.forces) * 1e3)
        if "stress" in predicted:
            self._add("stress", (predicted["stress"] - batch.stress) * 1e3)

    def summary(self) -> dict[str, float]:
        out = {}
        for name, (absolute, squared, count) in self.sums.items():
            if count:
                out[f"{name}_mae"] = absolute / count
                out[f"{name}_rmse"] = math.sqrt(squared / count)
        return out
