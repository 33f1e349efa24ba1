"""`GraphBatch`: many structures' atoms and edges concatenated, the only input models consume."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Sequence

import numpy as np
import torch

from mlip.graph.atomic_graph import AtomicGraph, build_graph
from mlip.io.frame import Frame

FLOAT_FIELDS = ("positions", "cell", "shifts", "energy", "forces", "stress", "weight")


@dataclass
class GraphBatch:
    """B structures with N atoms and E edges in total (missing labels are NaN).

    Attributes:
        numbers: (N,) int64 atomic numbers.
        positions: (N, 3) Å.
        cell: (B, 3, 3) Å, lattice vectors as rows.
        pbc: (B, 3) bool.
        receivers, senders: (E,) int64 indices into the concatenated atoms.
        shifts: (E, 3) integer cell offsets (stored as floats for matmul with the cell).
        batch: (N,) int64 structure index of each atom; ptr: (B + 1,) atom offsets.
        energy: (B,) eV; forces: (N, 3) eV/Å; stress: (B, 3, 3) eV/Å³; weight: (B,).

    Example:
        >>> batch = GraphBatch.from_frames(mlip.io.read("train.xyz")[:8], cutoff=5.0)
        >>> vectors = batch.edge_vectors()  # (E, 3)
    """

    numbers: torch.Tensor
    positions: torch.Tensor
    cell: torch.Tensor
    pbc: torch.Tensor
    receivers: torch.Tensor
    senders: torch.Tensor
    shifts: torch.Tensor
    batch: torch.Tensor
    ptr: torch.Tensor
    energy: torch.Tensor
    forces: torch.Tensor
    stress: torch.Tensor
    weight: torch.Tensor

    @property
    def num_graphs(self) -> int:
        return int(self.ptr.numel() - 1)

    @property
    def num_atoms(self) -> torch.Tensor:
        """(B,) atoms per structure."""
        return self.ptr[1:] - self.ptr[:-1]

    @property
    def edge_batch(self) -> torch.Tensor:
        """(E,) structure index of each edge."""
        return self.batch[self.receivers]

    def edge_vectors(self) -> torch.Tensor:
        """(E, 3) vectors from receiver to sender, Å: r_j + shift @ cell - r_i."""
        offsets = torch.einsum("ek,ekl->el", self.shifts, self.cell[self.edge_batch])
        return self.positions[self.senders] - self.positions[self.receivers] + offsets

    def rotated(self, rotations: torch.Tensor) -> "GraphBatch":
        """A copy with structure b rotated by `rotations[b]` (B, 3, 3) about the origin.

        Positions, cell rows and forces map as v → R v, stress as R σ Rᵀ; integer shifts and
        energies are unchanged, so the edge vectors of the copy are R times the originals.
        """
        rotations = rotations.to(dtype=self.positions.dtype, device=self.positions.device)
        per_atom = rotations[self.batch]
        return replace(
            self,
            positions=torch.einsum("nij,nj->ni", per_atom, self.positions),
            cell=torch.einsum("bij,bkj->bki", rotations, self.cell),
            forces=torch.einsum("nij,nj->ni", per_atom, self.forces),
            stress=rotations @ self.stress @ rotations.transpose(1, 2),
        )

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "GraphBatch":
        """A copy on `device`, with floating-point fields cast to `dtype` (indices stay int64)."""
        moved = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if dtype is not None and f.name in FLOAT_FIELDS:
                moved[f.name] = value.to(device=device, dtype=dtype)
            else:
                moved[f.name] = value.to(device=device)
        return replace(self, **moved)

    def for_model(self, dtype: torch.dtype, device: torch.device | str | None = None) -> "GraphBatch":
        """`to(device, dtype)` with the total energies kept in float64, as `Potential` sums its energies: a
        float32 copy of a molecular total (~ -17,600 eV for aspirin) would itself be rounded by up to 1 meV."""
        return replace(self.to(device=device, dtype=dtype), energy=self.energy.to(device=device, dtype=torch.float64))

    @classmethod
    def collate(cls, graphs: Sequence[AtomicGraph]) -> "GraphBatch":
        """Concatenate graphs, offsetting edge indices by each structure's first atom."""
        if not graphs:
            raise ValueError("cannot collate an empty list of graphs")
        n_atoms = np.array([g.n_atoms for g in graphs])
        ptr = np.concatenate([[0], np.cumsum(n_atoms)])
        offsets = np.repeat(ptr[:-1], [g.n_edges for g in graphs])

        def cat(name: str) -> np.ndarray:
            return np.concatenate([getattr(g, name) for g in graphs])

        def stack(name: str) -> np.ndarray:
            return np.stack([np.asarray(getattr(g, name)) for g in graphs])

        return cls(
            numbers=torch.from_numpy(cat("numbers").astype(np.int64)),
            positions=torch.from_numpy(cat("positions").astype(np.float64)),
            cell=torch.from_numpy(stack("cell").astype(np.float64)),
            pbc=torch.from_numpy(stack("pbc").astype(bool)),
            receivers=torch.from_numpy(cat("receivers").astype(np.int64) + offsets),
            senders=torch.from_numpy(cat("senders").astype(np.int64) + offsets),
            shifts=torch.from_numpy(cat("shifts").astype(np.float64)),
            batch=torch.from_numpy(np.repeat(np.arange(len(graphs)), n_atoms)),
            ptr=torch.from_numpy(ptr.astype(np.int64)),
            energy=torch.tensor([g.energy for g in graphs], dtype=torch.float64),
            forces=torch.from_numpy(cat("forces").astype(np.float64)),
            stress=torch.from_numpy(stack("stress").astype(np.float64)),
            weight=torch.tensor([g.weight for g in graphs], dtype=torch.float64),
        )

    @classmethod
    def from_frames(cls, frames: Sequence[Frame], cutoff: float, min_distance: float | None = 0.1) -> "GraphBatch":
        """Build neighbour graphs within `cutoff` Å and collate them."""
        return cls.collate([build_graph(f, cutoff, min_distance) for f in frames])
