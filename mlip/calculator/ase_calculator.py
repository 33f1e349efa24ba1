"""`MLIPCalculator`: an mlip potential behind ASE's calculator contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from mlip.checksum import file_sha256
from mlip.graph.batch import GraphBatch
from mlip.graph.verlet import VerletNeighborList, graph_from_atoms
from mlip.models.potential import Potential


def resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    """torch.float32/float64, their names ("float64"), or None (the model's own)."""
    if dtype is None or isinstance(dtype, torch.dtype) and dtype in (torch.float32, torch.float64):
        return dtype
    names = {"float32": torch.float32, "float64": torch.float64, "torch.float32": torch.float32,
             "torch.float64": torch.float64}
    if isinstance(dtype, str) and dtype in names:
        return names[dtype]
    raise ValueError(f"dtype must be float32 or float64 (a torch dtype or its name), got {dtype!r}")


class MLIPCalculator(Calculator):
    """Energy, free energy, forces, stress (Voigt, ASE sign) and per-atom energies, in eV and Å.

    Args:
        model: a model file written by mlip-train/`mlip.export.save` (loaded with frozen weights), or a
            `Potential`, used as it is (`potential.requires_grad_(False)` first runs it 10–20 % faster on
            small structures: `mlip.nn.frozen`).
        device: "cpu", "cuda", ...; dtype: torch.float32/float64 or "float32"/"float64" (default: the model's).
        skin: Å added to the cutoff for the kept neighbour list (0 rebuilds every call).
        compile: run the network under torch.compile (`mlip.export.compiled.compile_potential`;
            the first calls compile, later ones are faster on large structures).

    Stress is given for every cell with a volume and at least one periodic direction (bulk and
    slabs, so that in-plane cell filters work); molecules without a cell get none. `todict()`
    records the model file and its SHA-256, so that a trajectory says which model made it.

    Example:
        >>> atoms.calc = MLIPCalculator("run/model.mlip")
        >>> atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies"]

    def __init__(self, model: str | Path | Potential, device: str | torch.device = "cpu",
                 dtype: torch.dtype | str | None = None, skin: float = 0.5, compile: bool = False, **kwargs):
        super().__init__(**kwargs)
        dtype = resolve_dtype(dtype)
        if isinstance(model, (str, Path)):
            from mlip.export import load

            self.parameters.update(model=str(model), model_sha256=file_sha256(model))
            # its own copy: frozen weights (no weight gradients; e3nn's linear maps as cached matrices, mlip.nn.frozen)
            model = load(model, dtype=dtype, device=device).requires_grad_(False)
        self.potential = model.to(device=device, dtype=dtype or model.dtype).eval()
        if compile:
            from mlip.export.compiled import compile_potential

            self.potential = compile_potential(self.potential)
        self.device = torch.device(device)
        self.dtype = self.potential.dtype
        self.neighbors = VerletNeighborList(self.potential.cutoff, skin)
        self.parameters.update(device=str(self.device), dtype=str(self.dtype).removeprefix("torch."), skin=skin,
                               compile=bool(compile))

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        batch = GraphBatch.collate([graph_from_atoms(atoms, self.neighbors)]).to(device=self.device, dtype=self.dtype)
        # Stress comes from the same backward pass: always give it for periodic cells, so that a
        # get_forces() followed by get_stress() (as cell filters do) costs one model call.
        want_stress = bool(atoms.pbc.any()) and atoms.cell.rank == 3
        out = self.potential(batch, forces=True, stress=want_stress, create_graph=False)
        energy = float(out["energy"][0].detach())
        self.results = {"energy": energy, "free_energy": energy,
                        "energies": out["node_energy"].detach().cpu().numpy().astype(np.float64),
                        "forces": out["forces"].detach().cpu().numpy().astype(np.float64)}
        if want_stress:
            s = out["stress"][0].detach().cpu().numpy().astype(np.float64)
            self.results["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
