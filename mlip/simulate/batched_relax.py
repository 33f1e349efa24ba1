"""Batched FIRE: many structures relaxed together, one model call per step for all of them.

Like torch-sim, the state of every structure lives in one batch and the optimiser is plain
tensor code over it. Each structure has its own FIRE time step, mixing and velocity
(Bitzek et al. 2006, with ASE's defaults); structures leave the batch when converged. Cell
degrees of freedom follow ASE's UnitCellFilter: a strain ε per structure with generalised
force −V σ / N, applied as positions, cell ← (·)(I + dε).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms

from mlip.graph.verlet import VerletNeighborList, graph_from_atoms
from mlip.graph.batch import GraphBatch
from mlip.models.potential import Potential
from mlip.simulate.relax import RelaxationError, RelaxResult, check_finite


@dataclass
class FireSettings:
    dt_start: float = 0.1
    dt_max: float = 1.0
    max_move: float = 0.2
    n_min: int = 5
    f_inc: float = 1.1
    f_dec: float = 0.5
    alpha_start: float = 0.1
    f_alpha: float = 0.99


def _sum_per_system(values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    return torch.zeros(size, dtype=values.dtype, device=values.device).index_add_(0, index, values)


def default_atoms_per_call(device: torch.device | str) -> int:
    """Atoms per model call for batched engines. On a CPU, calls of 512 atoms: measured while
    large blocks were still re-mapped by the kernel every call (before `mlip.memory`),
    `equivariant_medium`'s cost per atom was 0.76 ms at 216 atoms, 0.77 at 512, 0.89 at 1,000
    and 1.54 at 4,096 (one thread, diamond Si), and 16 Si cells of 64 atoms relaxed in 51 s in
    calls of 512 atoms against 61 s in one call (benchmarks/README.md "Batched relaxation"); with freed memory
    kept the cost is flat, and 512-atom calls keep the heap small. On a GPU one call should hold
    as much as possible."""
    return 512 if torch.device(device).type == "cpu" else 65536


def call_groups(sizes: list[int], atoms_per_call: int) -> list[list[int]]:
    """Positions 0..len(sizes)−1 split, in order, into groups of at most `atoms_per_call` atoms
    (a structure larger than that is a group of its own)."""
    groups, current, atoms = [], [], 0
    for position, size in enumerate(sizes):
        if current and atoms + size > atoms_per_call:
            groups.append(current)
            current, atoms = [], 0
        current.append(position)
        atoms += size
    return groups + [current] if current else groups


def relax_batch(potential: Potential, structures: list[Atoms], fmax: float = 0.02, smax: float = 1e-3,
                relax_cell: bool = True, max_steps: int = 500, skin: float = 0.5,
                settings: FireSettings = FireSettings(), atoms_per_call: int | None = None) -> list[RelaxResult]:
    """Relax `structures` together with `potential`; one `RelaxResult` per structure, in order
    (relaxed copy, energy eV, largest force component eV/Å and stress component eV/Å³ at the
    end, steps taken, converged).

    Convergence per structure, as `mlip.simulate.relax.relax`: max |force component| < fmax eV/Å
    and, with `relax_cell` on a periodic cell, max |stress component| < smax eV/Å³. Molecules,
    slabs and bulk cells may be mixed (only fully periodic cells relax their cell).
    The structures still relaxing are evaluated in model calls of at most `atoms_per_call` atoms
    (default: `default_atoms_per_call` of the potential's device).
    """
    if fmax <= 0 or smax <= 0 or max_steps < 1 or (atoms_per_call is not None and atoms_per_call < 1):
        raise ValueError(f"fmax and smax must be positive, max_steps and atoms_per_call >= 1, got {fmax}, {smax}, "
                         f"{max_steps}, {atoms_per_call}")
    device, dtype = potential.device, potential.dtype
    atoms = [a.copy() for a in structures]
    lists = [VerletNeighborList(potential.cutoff, skin) for _ in atoms]
    cell_dof = [relax_cell and bool(a.pbc.all()) for a in atoms]
    velocity = [np.zeros((len(a), 3)) for a in atoms]
    cell_velocity = [np.zeros((3, 3)) for _ in atoms]
    dt = np.full(len(atoms), settings.dt_start)
    alpha = np.full(len(atoms), settings.alpha_start)
    positive = np.zeros(len(atoms), dtype=int)
    steps = np.zeros(len(atoms), dtype=int)
    energies = np.zeros(len(atoms))
    largest_force, largest_stress = np.zeros(len(atoms)), np.full(len(atoms), np.nan)
    converged = np.zeros(len(atoms), dtype=bool)
    atoms_per_call = default_atoms_per_call(device) if atoms_per_call is None else atoms_per_call
    active = list(range(len(atoms)))
    for _ in range(max_steps + 1):
        if not active:
            break
        still = []
        for group in call_groups([len(atoms[k]) for k in active], atoms_per_call):
            members = [active[j] for j in group]
            graphs = [graph_from_atoms(atoms[k], lists[k]) for k in members]
            batch = GraphBatch.collate(graphs).to(device=device, dtype=dtype)
            out = potential(batch, forces=True, stress=any(cell_dof[k] for k in members), create_graph=False)
            forces = out["forces"].detach().cpu().double().numpy()
            stress = out["stress"].detach().cpu().double().numpy() if "stress" in out else None
            energy = out["energy"].detach().cpu().double().numpy()
            ptr = batch.ptr.cpu().numpy()
            for j, k in enumerate(members):
                a, f = atoms[k], forces[ptr[j]:ptr[j + 1]]
                energies[k] = float(energy[j])
                g_cell = -a.get_volume() * stress[j] / len(a) if cell_dof[k] else np.zeros((3, 3))
                try:
                    check_finite(int(steps[k]), float(energy[j]), f, stress[j] if cell_dof[k] else None)
                except RelaxationError as exc:
                    raise RelaxationError(f"structure {k} of the batch, {exc}", structure=k) from None
                largest_force[k] = np.abs(f).max(initial=0.0)
                if cell_dof[k]:
                    largest_stress[k] = np.abs(stress[j]).max()
                converged[k] = largest_force[k] < fmax and (not cell_dof[k] or largest_stress[k] < smax)
                if converged[k] or steps[k] >= max_steps:
                    continue
                still.append(k)
                steps[k] += 1
                _fire_step(a, f, g_cell, velocity, cell_velocity, k, dt, alpha, positive, settings)
        active = still
    return [RelaxResult(a, float(e), float(f), float(s), int(n), bool(c))
            for a, e, f, s, n, c in zip(atoms, energies, largest_force, largest_stress, steps, converged)]


def _fire_step(a: Atoms, f: np.ndarray, g_cell: np.ndarray, velocity, cell_velocity, k: int, dt, alpha, positive,
               s: FireSettings) -> None:
    """One FIRE update of structure k's positions and strain (in place)."""
    force = np.concatenate([f.ravel(), g_cell.ravel()])
    v = np.concatenate([velocity[k].ravel(), cell_velocity[k].ravel()])
    power = float(force @ v)
    if power > 0:
        norm_f = np.linalg.norm(force)
        v = (1 - alpha[k]) * v + alpha[k] * np.linalg.norm(v) * force / max(norm_f, 1e-300)
        if positive[k] > s.n_min:
            dt[k] = min(dt[k] * s.f_inc, s.dt_max)
            alpha[k] *= s.f_alpha
        positive[k] += 1
    else:
        v[:] = 0.0
        alpha[k], positive[k] = s.alpha_start, 0
        dt[k] *= s.f_dec
    v = v + dt[k] * force
    move = dt[k] * v
    length = np.linalg.norm(move)
    if length > s.max_move:
        move *= s.max_move / length
    n = len(a)
    velocity[k], cell_velocity[k] = v[: 3 * n].reshape(n, 3), v[3 * n:].reshape(3, 3)
    a.positions = a.positions + move[: 3 * n].reshape(n, 3)
    strain = move[3 * n:].reshape(3, 3)
    if np.any(strain):
        deformation = np.eye(3) + 0.5 * (strain + strain.T)
        a.set_cell(a.cell.array @ deformation, scale_atoms=False)
        a.positions = a.positions @ deformation
