"""How far a potential is from rotation equivariance, measured on real structures."""

from __future__ import annotations

from typing import Sequence

import torch

from mlip.graph.batch import GraphBatch
from mlip.io.frame import Frame
from mlip.models.potential import Potential


def equivariance_errors(potential: Potential, frames: Sequence[Frame], rotations: int = 32, seed: int = 0,
                        batch_size: int = 16) -> dict[str, float]:
    """Energy spread and force-equivariance error of `potential` over random rotations.

    Every structure is rotated by `rotations` random rotations R (Haar on SO(3), fixed `seed`),
    cell and positions together. Returns:
        energy_std_mev: standard deviation of the total energy over the rotations, meV, mean over structures.
        energy_range_mev: max − min of the total energy over the rotations, meV, mean over structures.
        force_relative_error: sqrt(Σ‖F(Rx) − R F(x)‖²) / sqrt(Σ‖F(x)‖²) over all atoms and rotations.
    An exactly equivariant model gives zeros up to round-off.
    """
    if rotations < 2:
        raise ValueError("need at least 2 rotations to measure a spread")
    dtype = potential.dtype
    device = potential.device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        from e3nn import o3

        matrices = o3.rand_matrix(rotations, dtype=torch.float64)
    stds, ranges, residual, norm = [], [], 0.0, 0.0
    for start in range(0, len(frames), batch_size):
        batch = GraphBatch.from_frames(frames[start:start + batch_size], potential.cutoff).to(device, dtype)
        reference = potential(batch, forces=True, create_graph=False)["forces"].detach()
        energies = []
        for matrix in matrices:
            stacked = matrix.expand(batch.num_graphs, 3, 3).to(device=device, dtype=dtype)
            out = potential(batch.rotated(stacked), forces=True, create_graph=False)
            energies.append(out["energy"].detach())
            expected = reference @ matrix.to(device=device, dtype=dtype).T
            residual += float((out["forces"].detach() - expected).pow(2).sum())
            norm += float(reference.pow(2).sum())
        table = torch.stack(energies).double() * 1000.0  # (rotations, B) meV
        stds.append(table.std(dim=0))
        ranges.append(table.max(dim=0).values - table.min(dim=0).values)
    return {"energy_std_mev": float(torch.cat(stds).mean()), "energy_range_mev": float(torch.cat(ranges).mean()),
            "force_relative_error": (residual / max(norm, 1e-30)) ** 0.5, "rotations": rotations,
            "structures": len(frames)}
