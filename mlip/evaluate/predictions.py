"""Predictions written beside the reference labels as extended XYZ (keys prefixed `mlip_`)."""

from __future__ import annotations

from pathlib import Path
from typing import IO

import numpy as np
import torch

from mlip.graph.batch import GraphBatch


class PredictionWriter:
    """Appends every structure of each evaluated batch to an extended XYZ file:

    reference labels as `energy` (eV), `forces` (eV/Å), `stress` (eV/Å³, 9 components, ASE's sign),
    where the data had them, and the model's as `mlip_energy`, `mlip_forces`, `mlip_stress`.
    Use as `evaluate_potential(..., on_batch=writer)`; `close()` when done.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle: IO[str] = open(self.path, "w")
        self.count = 0

    def __call__(self, batch: GraphBatch, predicted: dict[str, torch.Tensor]) -> None:
        from ase import Atoms
        from ase.io import write

        ptr = batch.ptr.cpu().numpy()
        numpy = {k: v.detach().cpu().double().numpy() for k, v in predicted.items()}
        labels = {"energy": batch.energy, "forces": batch.forces, "stress": batch.stress}
        labels = {k: v.detach().cpu().double().numpy() for k, v in labels.items()}
        for b in range(batch.num_graphs):
            atoms_slice = slice(ptr[b], ptr[b + 1])
            atoms = Atoms(numbers=batch.numbers[atoms_slice].cpu().numpy(),
                          positions=batch.positions[atoms_slice].detach().cpu().double().numpy(),
                          cell=batch.cell[b].detach().cpu().double().numpy(), pbc=batch.pbc[b].cpu().numpy())
            atoms.info["mlip_energy"] = float(numpy["energy"][b])
            if np.isfinite(labels["energy"][b]):
                atoms.info["energy"] = float(labels["energy"][b])
            if "forces" in numpy:
                atoms.arrays["mlip_forces"] = numpy["forces"][atoms_slice]
            if np.isfinite(labels["forces"][atoms_slice]).all():
                atoms.arrays["forces"] = labels["forces"][atoms_slice]
            if "stress" in numpy:
                atoms.info["mlip_stress"] = numpy["stress"][b].ravel()
            if np.isfinite(labels["stress"][b]).all():
                atoms.info["stress"] = labels["stress"][b].ravel()
            write(self.handle, atoms, format="extxyz")
            self.count += 1

    def close(self) -> None:
        self.handle.close()
