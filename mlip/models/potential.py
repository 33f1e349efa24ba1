"""`Potential`: any per-atom-energy network → total energy, forces and stress (eV, eV/Å, eV/Å³)."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from mlip.graph.batch import GraphBatch
from mlip.graph.edge_pairs import edge_pairs


def strained(positions: torch.Tensor, cell: torch.Tensor, batch: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Positions (N, 3) and cells (B, 3, 3) under a zero symmetric strain ε (B, 3, 3) that
    autograd can differentiate: r → r(1+ε), cell → cell(1+ε). Returns (positions, cell, ε)."""
    strain = torch.zeros_like(cell, requires_grad=True)
    symmetric = 0.5 * (strain + strain.transpose(1, 2))
    positions = positions + torch.einsum("ni,nij->nj", positions, symmetric[batch])
    return positions, cell + torch.bmm(cell, symmetric), strain


def stress_from_strain_gradient(gradient: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
    """σ = (1/V) ∂E/∂ε (B, 3, 3) eV/Å³, ASE's sign; NaN for structures without a volume."""
    volume = torch.linalg.det(cell).abs()
    volume = torch.where(volume > 1e-12, volume, torch.full_like(volume, float("nan")))
    return gradient / volume[:, None, None]


class UnknownElementError(ValueError):
    """The structure holds an element the potential was not trained on."""


class Potential(nn.Module):
    """E = Σ_i [ scale · ε_i + shift + E0(Z_i) ], forces = −∂E/∂r, stress = (1/V) ∂E/∂ε.

    `network(species, edge_vectors, receivers, senders) -> (N,)` gives ε_i; every
    architecture gets identical forces and stress from this one wrapper. Stress uses a
    symmetric strain ε applied to positions and cell (r → r(1+ε), cell → cell(1+ε)); ASE's
    sign convention, NaN for structures without a volume (molecules).

    Args:
        network: the per-atom energy model.
        atomic_numbers: the elements it knows, e.g. [1, 6, 8]; species index = position here.
        cutoff: neighbour cutoff, Å (graphs must be built with it).
        reference_energies: eV per element (e.g. the shard manifest's least-squares fit).
        scale, shift: eV; per-atom energy = scale · ε_i + shift (+ reference). `learn_scale_shift`
            makes them trainable.
        repulsion: "zbl" adds the ZBL screened-Coulomb pair repulsion below the covalent
            distance (`mlip.nn.repulsion`), a physical prior against atoms fusing in MD; None: off.
    """

    def __init__(self, network: nn.Module, atomic_numbers: list[int], cutoff: float,
                 reference_energies: Mapping[int, float] | None = None, scale: float = 1.0, shift: float = 0.0,
                 learn_scale_shift: bool = False, repulsion: str | None = None):
        super().__init__()
        if repulsion not in (None, "zbl"):
            raise ValueError(f"repulsion must be 'zbl' or None, got '{repulsion}'")
        from mlip.nn.repulsion import ZBLRepulsion

        self.repulsion = ZBLRepulsion(atomic_numbers) if repulsion == "zbl" else None
        self.network = network
        self.atomic_numbers = [int(z) for z in atomic_numbers]
        self.cutoff = float(cutoff)
        table = torch.full((119,), -1, dtype=torch.long)
        table[torch.tensor(self.atomic_numbers)] = torch.arange(len(self.atomic_numbers))
        self.register_buffer("species_of_z", table, persistent=False)
        references = reference_energies or {}
        self.register_buffer("reference", torch.tensor([float(references.get(z, 0.0)) for z in self.atomic_numbers]))
        scale_t, shift_t = torch.tensor(float(scale)), torch.tensor(float(shift))
        if learn_scale_shift:
            self.scale, self.shift = nn.Parameter(scale_t), nn.Parameter(shift_t)
        else:
            self.register_buffer("scale", scale_t)
            self.register_buffer("shift", shift_t)

    @property
    def dtype(self) -> torch.dtype:
        """The floating-point type of the weights (and of energies, forces and stress it returns)."""
        return self.reference.dtype

    @property
    def device(self) -> torch.device:
        """Where the weights live."""
        return self.reference.device

    def species(self, numbers: torch.Tensor) -> torch.Tensor:
        """Species indices (N,) of atomic numbers; raises `UnknownElementError` for other elements."""
        species = self.species_of_z[numbers]
        if bool((species < 0).any()):
            from ase.data import chemical_symbols

            unknown = sorted({chemical_symbols[int(z)] for z in numbers[species < 0].unique()})
            known = [chemical_symbols[z] for z in self.atomic_numbers]
            raise UnknownElementError(f"this potential was trained on {known} and cannot handle {unknown}")
        return species

    def forward(self, batch: GraphBatch, forces: bool = True, stress: bool = False,
                create_graph: bool | None = None, embeddings: bool = False) -> dict[str, torch.Tensor]:
        """Energies (B,), per-atom energies (N,), and forces (N, 3) / stress (B, 3, 3) when asked.

        `create_graph` (default: `self.training`) keeps the derivative graph for force losses.
        `embeddings=True` also returns the network's per-atom embeddings (N, D) as "embedding"
        (networks with `embedding()` and `head()`, e.g. the transformer).
        """
        if batch.positions.dtype != self.dtype:
            batch = batch.to(dtype=self.dtype)
        species = self.species(batch.numbers)
        leaf = batch.positions.detach().requires_grad_(True) if forces else batch.positions
        positions, cell, strain = leaf, batch.cell, None
        if stress:
            positions, cell, strain = strained(positions, cell, batch.batch)
        offsets = torch.einsum("ek,ekl->el", batch.shifts, cell[batch.edge_batch])
        vectors = positions.index_select(0, batch.senders) - positions.index_select(0, batch.receivers) + offsets
        out: dict[str, torch.Tensor] = {}
        structure = self._structure_inputs(batch, positions)
        if embeddings:
            out["embedding"] = self._network_embedding(species, vectors, batch, structure)
            node = self.network.head(out["embedding"])
        else:
            if getattr(self.network, "accepts_edge_pairs", False):
                structure["edge_pairs"] = edge_pairs(batch.receivers, batch.senders, batch.shifts, len(species))
            node = self.network(species, vectors, batch.receivers, batch.senders, **structure)
        interaction = self.scale * node + self.shift
        if self.repulsion is not None:
            interaction = interaction + self.repulsion(species, vectors, batch.receivers, batch.senders)
        reference = self.reference[species]
        node_energy = interaction + reference
        # totals in float64: the reference energies are large (~ -1,000 eV per carbon atom in molecular DFT), and a
        # float32 sum of them was off by 2 meV at 21 atoms, 0.1 eV at 315 and 2.6 eV at 1,050 (test_energy_precision)
        energy = torch.zeros(batch.num_graphs, dtype=torch.float64, device=node_energy.device)
        energy = energy.index_add(0, batch.batch, interaction.double()).index_add(0, batch.batch, reference.double())
        out.update(energy=energy, node_energy=node_energy)
        inputs = ([leaf] if forces else []) + ([strain] if stress else [])
        if inputs:
            keep = self.training if create_graph is None else create_graph
            grads = torch.autograd.grad(energy.sum(), inputs, create_graph=keep, allow_unused=True)
            grads = [torch.zeros_like(x) if g is None else g for g, x in zip(grads, inputs)]
            if forces:
                out["forces"] = -grads[0]
            if stress:
                out["stress"] = stress_from_strain_gradient(grads[-1], batch.cell)
        return out

    def embed(self, batch: GraphBatch) -> torch.Tensor:
        """The network's per-atom embeddings (N, D) of `batch`, without energies or forces."""
        if batch.positions.dtype != self.dtype:
            batch = batch.to(dtype=self.dtype)
        return self._network_embedding(self.species(batch.numbers), batch.edge_vectors(), batch,
                                       self._structure_inputs(batch, batch.positions))

    def _structure_inputs(self, batch: GraphBatch, positions: torch.Tensor) -> dict:
        """Extra keyword inputs for networks that see whole structures (`uses_structure = True`, e.g.
        molecule attention or frame averaging): positions (N, 3) Å, batch (N,), num_graphs, periodic (B,)."""
        if not getattr(self.network, "uses_structure", False):
            return {}
        return {"positions": positions, "batch": batch.batch, "num_graphs": batch.num_graphs,
                "periodic": batch.pbc.any(dim=-1)}

    def _network_embedding(self, species: torch.Tensor, vectors: torch.Tensor, batch: GraphBatch,
                           structure: dict) -> torch.Tensor:
        if not hasattr(self.network, "embedding"):
            raise TypeError(f"{type(self.network).__name__} exposes no per-atom embedding; the embedding-space "
                            "symmetry objective needs architecture 'transformer'")
        return self.network.embedding(species, vectors, batch.receivers, batch.senders, **structure)
