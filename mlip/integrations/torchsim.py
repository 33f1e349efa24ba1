"""mlip potentials as torch-sim models: batched relaxation and MD on torch-sim's engines.

    import torch_sim as ts
    from mlip.integrations.torchsim import MLIPModel

    model = MLIPModel("model.mlip")                       # or a `Potential`
    relaxed = ts.optimize(system=list_of_atoms, model=model, optimizer=ts.frechet_cell_fire,
                          convergence_fn=ts.generate_force_convergence_fn(0.02), autobatcher=True)

The batch is built from torch-sim's state directly, on the state's device: one vesin-torch
neighbour list per system (periodic along every direction when the state's `pbc` is True, as
torch-sim's states are; none otherwise), no NumPy round trip. Energies (n_systems,) eV, forces
(n_atoms, 3) eV/Å and stress (n_systems, 3, 3) eV/Å³ in ASE's sign convention are the
potential's own exact derivatives, as `MLIPCalculator` gives them.

Needs the optional extra `mlip[torchsim]` (package `torch-sim-atomistic`).
"""

from __future__ import annotations

from pathlib import Path

import torch

try:
    import torch_sim as ts
    from torch_sim.models.interface import ModelInterface
    from vesin_torch import NeighborList
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("mlip.integrations.torchsim needs torch-sim: pip install 'mlip[torchsim]'") from exc

from mlip.graph.batch import GraphBatch
from mlip.models.potential import Potential


class MLIPModel(ModelInterface):
    """A torch-sim `ModelInterface` around an mlip `Potential` (or a model file path).

    Args:
        model: a `Potential` or the path of a model file (`mlip.load`).
        device: where to run (default: the potential's device, or "cpu" for a file).
        dtype: float32 or float64 (default: the potential's); states are converted to it.
        compute_stress: also return the stress (needed by cell optimisers and NPT).
        compute_forces: return forces (always computed: they are the energy's gradient).
        compile: run the network under torch.compile (`mlip.export.compiled.compile_potential`).
    """

    def __init__(self, model: Potential | str | Path, device: str | torch.device | None = None,
                 dtype: torch.dtype | None = None, compute_stress: bool = True, compute_forces: bool = True,
                 compile: bool = False):
        super().__init__()
        if isinstance(model, (str, Path)):
            from mlip.export import load

            model = load(model, dtype=dtype, device=device or "cpu")
        self.potential = model.to(device=device or model.device, dtype=dtype or model.dtype).eval()
        for parameter in self.potential.parameters():
            parameter.requires_grad_(False)
        if compile:
            from mlip.export.compiled import compile_potential

            self.potential = compile_potential(self.potential)
        self._device = self.potential.device
        self._dtype = self.potential.dtype
        self._compute_stress = bool(compute_stress)
        self._compute_forces = bool(compute_forces)
        self._memory_scales_with = "n_atoms_x_density"
        self.neighbor_list = NeighborList(cutoff=self.potential.cutoff, full_list=True)

    @ModelInterface.compute_stress.setter
    def compute_stress(self, value: bool) -> None:
        self._compute_stress = bool(value)

    @ModelInterface.compute_forces.setter
    def compute_forces(self, value: bool) -> None:
        self._compute_forces = bool(value)

    def graph_batch(self, state: ts.SimState) -> GraphBatch:
        """The `GraphBatch` of a torch-sim state (positions in the model's dtype, on its device)."""
        positions = state.positions.to(device=self._device, dtype=self._dtype)
        cells = state.row_vector_cell.to(device=self._device, dtype=self._dtype)  # (B, 3, 3), vectors as rows
        system_idx = state.system_idx.to(self._device)
        n_systems = cells.shape[0]
        counts = torch.bincount(system_idx, minlength=n_systems)
        ptr = torch.zeros(n_systems + 1, dtype=torch.long, device=self._device)
        ptr[1:] = torch.cumsum(counts, 0)
        if bool((system_idx[1:] < system_idx[:-1]).any()):
            raise ValueError("torch-sim state with atoms not grouped by system; mlip needs system_idx sorted")
        periodic = bool(state.pbc)
        receivers, senders, shifts = [], [], []
        for b in range(n_systems):
            start, stop = int(ptr[b]), int(ptr[b + 1])
            box = cells[b] if periodic else torch.zeros_like(cells[b])
            i, j, s = self.neighbor_list.compute(points=positions[start:stop].detach(), box=box.detach(),
                                                 periodic=periodic, quantities="ijS", copy=True)
            receivers.append(i.to(torch.long) + start)
            senders.append(j.to(torch.long) + start)
            shifts.append(s.to(self._dtype))
        n_atoms = positions.shape[0]
        nan = torch.full((n_systems,), float("nan"), dtype=self._dtype, device=self._device)
        return GraphBatch(
            numbers=state.atomic_numbers.to(self._device, torch.long), positions=positions, cell=cells,
            pbc=torch.full((n_systems, 3), periodic, dtype=torch.bool, device=self._device),
            receivers=torch.cat(receivers), senders=torch.cat(senders), shifts=torch.cat(shifts),
            batch=system_idx, ptr=ptr, energy=nan,
            forces=torch.full((n_atoms, 3), float("nan"), dtype=self._dtype, device=self._device),
            stress=torch.full((n_systems, 3, 3), float("nan"), dtype=self._dtype, device=self._device),
            weight=torch.ones(n_systems, dtype=self._dtype, device=self._device))

    def forward(self, state: ts.SimState | dict, **kwargs) -> dict[str, torch.Tensor]:
        """energy (n_systems,) eV, forces (n_atoms, 3) eV/Å, stress (n_systems, 3, 3) eV/Å³ when asked."""
        if isinstance(state, dict):
            state = ts.SimState(**state, masses=torch.ones_like(state["positions"]))
        batch = self.graph_batch(state)
        stress = self._compute_stress and bool(state.pbc)
        with torch.enable_grad():
            out = self.potential(batch, forces=self._compute_forces, stress=stress, create_graph=False)
        results = {"energy": out["energy"].detach().to(self._dtype)}  # torch-sim's states hold one dtype
        if self._compute_forces:
            results["forces"] = out["forces"].detach()
        if self._compute_stress:
            results["stress"] = (out["stress"].detach() if stress else
                                 torch.full((batch.num_graphs, 3, 3), float("nan"), dtype=self._dtype,
                                            device=self._device))
        return results
