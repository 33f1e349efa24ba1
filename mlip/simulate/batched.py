"""Many structures at once on torch-sim's engines: relaxation (FIRE, Frechet cell filter) and
Langevin/NVE molecular dynamics, with structures swapped in and out of the batch as they finish.

One model call per step serves the whole batch, so throughput grows with the number of
structures until the batch fills the machine; `max_atoms` bounds the atoms in flight. The
convergence test is `mlip.simulate.relax.relax`'s (max |force component| < fmax eV/Å and,
for cells, max |stress component| < smax eV/Å³), so both paths stop at the same point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms

from mlip.models.potential import Potential
from mlip.simulate.relax import RelaxResult


def _torchsim():
    try:
        import torch_sim as ts
    except ImportError as exc:
        raise ImportError("batched relaxation and MD run on torch-sim: pip install 'mlip[torchsim]'") from exc
    from mlip.integrations.torchsim import MLIPModel

    return ts, MLIPModel


def relax_structures(potential: Potential, structures: list[Atoms], fmax: float = 0.02, smax: float = 1e-3,
                     relax_cell: bool = True, max_steps: int = 500, max_atoms: int = 4096,
                     check_every: int = 5) -> list[RelaxResult]:
    """Relax `structures` together (copies are returned, in input order).

    Positions and, with `relax_cell` on periodic structures, the cell (torch-sim's
    `frechet_cell_fire`, ASE's FrechetCellFilter + FIRE) until the forces and stresses pass
    `fmax`/`smax`, checked every `check_every` steps, or `max_steps` steps per structure.
    Molecules and periodic structures may be mixed: they run as two groups (torch-sim's
    periodicity is per batch).
    """
    if fmax <= 0 or smax <= 0 or max_steps < 1 or check_every < 1 or max_atoms < 1:
        raise ValueError("fmax and smax must be positive; max_steps, check_every and max_atoms at least 1")
    results: list[RelaxResult | None] = [None] * len(structures)
    for periodic in (True, False):
        group = [k for k, atoms in enumerate(structures) if bool(atoms.pbc.all()) == periodic]
        partial = [k for k in group if not periodic and atoms_partly_periodic(structures[k])]
        if partial:
            raise ValueError(f"structure {partial[0]} is periodic along some directions only; torch-sim states are "
                             f"periodic along all three or none (relax it with mlip.simulate.relax)")
        if group:
            relaxed = _relax_group(potential, [structures[k] for k in group], fmax, smax, relax_cell and periodic,
                                   max_steps, max_atoms, check_every)
            for k, result in zip(group, relaxed):
                results[k] = result
    return results  # type: ignore[return-value]


def atoms_partly_periodic(atoms: Atoms) -> bool:
    return bool(atoms.pbc.any()) and not bool(atoms.pbc.all())


def _converged(state, fmax: float, smax: float, cell: bool) -> torch.Tensor:
    """(n_systems,) bool: every force component below fmax and, for cells, every stress component below smax."""
    n_systems = state.n_systems
    largest = torch.zeros(n_systems, dtype=state.forces.dtype, device=state.forces.device)
    largest = largest.scatter_reduce(0, state.system_idx, state.forces.abs().amax(dim=1), reduce="amax")
    done = largest < fmax
    if cell:
        done = done & (state.stress.abs().flatten(1).amax(dim=1) < smax)
    return done


def _relax_group(potential: Potential, structures: list[Atoms], fmax: float, smax: float, cell: bool, max_steps: int,
                 max_atoms: int, check_every: int) -> list[RelaxResult]:
    ts, MLIPModel = _torchsim()
    model = MLIPModel(potential, compute_stress=cell)
    optimizer = ts.frechet_cell_fire if cell else ts.optimizers.fire
    init, update = optimizer(model=model)
    states = [init(ts.io.atoms_to_state([atoms], model.device, model.dtype)) for atoms in structures]
    largest = max(len(atoms) for atoms in structures)
    batcher = ts.InFlightAutoBatcher(model, memory_scales_with="n_atoms", max_memory_scaler=max(max_atoms, largest),
                                     return_indices=True, max_iterations=math.ceil(max_steps / check_every))
    batcher.load_states(states)
    finished, steps = [], np.zeros(len(structures), dtype=int)
    state, converged = None, None
    while True:
        state, completed, running = batcher.next_batch(state, converged)
        finished.extend(completed)
        if state is None:
            break
        for _ in range(check_every):
            state = update(state)
        steps[running] += check_every
        converged = _converged(state, fmax, smax, cell)
    final = batcher.restore_original_order(finished)
    results = []
    for atoms, relaxed, n_steps in zip(structures, final, steps):
        out = model(relaxed)
        forces = float(out["forces"].abs().max())
        stress = float(out["stress"].abs().max()) if cell else float("nan")
        result_atoms = relaxed.to_atoms()[0]
        result_atoms.pbc = atoms.pbc
        ok = forces < fmax and (not cell or stress < smax)
        results.append(RelaxResult(result_atoms, float(out["energy"][0]), forces, stress, int(n_steps), ok))
    return results


@dataclass
class MDResult:
    """Final structures, and per structure the temperature (K), potential and kinetic energy (eV)
    every `interval` steps."""

    structures: list[Atoms]
    temperatures: np.ndarray  # (reports, n_structures)
    potential_energies: np.ndarray  # (reports, n_structures)
    kinetic_energies: np.ndarray  # (reports, n_structures)


def _watch(step: int, temperatures: np.ndarray, energies: np.ndarray, target_K: float, timestep_fs: float) -> None:
    """`mlip.simulate.md.watchdog`'s checks for a batch: non-finite energies, runaway temperatures."""
    from mlip.simulate.md import HOT_FACTOR, MDInstabilityError

    bad = np.flatnonzero(~np.isfinite(energies) | ~np.isfinite(temperatures))
    if bad.size:
        raise MDInstabilityError(f"step {step}: structure {int(bad[0])} has a non-finite energy or temperature")
    limit = HOT_FACTOR * max(target_K, 300.0)
    hot = np.flatnonzero(temperatures > limit)
    if hot.size:
        raise MDInstabilityError(f"step {step}: structure {int(hot[0])} is at {temperatures[hot[0]]:.0f} K, over "
                                 f"{limit:.0f} K ({HOT_FACTOR:g}x the target): try a shorter time step than "
                                 f"{timestep_fs:g} fs, or the model fails in this region")


def run_md(potential: Potential, structures: list[Atoms], steps: int, timestep_fs: float, temperature_K: float,
           ensemble: str = "nvt", friction_per_fs: float = 0.01, interval: int = 10, seed: int = 0) -> MDResult:
    """Langevin NVT (or NVE) MD of all `structures` in one batch, `steps` steps of `timestep_fs`.

    Velocities start from Maxwell-Boltzmann at `temperature_K` (seeded). Structures must all be
    periodic or all be molecules (torch-sim's periodicity is per batch). Every `interval` steps
    the watchdog of `mlip.simulate.md` (non-finite energies, temperatures above 10x the target)
    stops the run with `MDInstabilityError` naming the step and the structure.
    """
    if ensemble not in ("nvt", "nve"):
        raise ValueError(f"ensemble must be 'nvt' or 'nve', got '{ensemble}'")
    if steps < 1 or timestep_fs <= 0 or interval < 1 or temperature_K < 0:
        raise ValueError("steps and interval must be >= 1, timestep_fs > 0 and temperature_K >= 0")
    periodic = {bool(atoms.pbc.all()) for atoms in structures}
    if len(periodic) != 1 or any(atoms_partly_periodic(a) for a in structures):
        raise ValueError("batched MD needs structures that are all fully periodic or all molecules")
    ts, MLIPModel = _torchsim()
    torch.manual_seed(seed)
    model = MLIPModel(potential, compute_stress=False)
    state = ts.io.atoms_to_state(structures, model.device, model.dtype)
    fs = float(ts.units.MetalUnits.time) / 1000.0  # torch-sim's time unit: MetalUnits.time of them per ps
    dt = torch.tensor(timestep_fs * fs, dtype=model.dtype)
    kT = torch.tensor(temperature_K * float(ts.units.MetalUnits.temperature), dtype=model.dtype)
    if ensemble == "nvt":
        gamma = torch.tensor(friction_per_fs / fs, dtype=model.dtype)
        init, update = ts.nvt_langevin(model=model, dt=dt, kT=kT, gamma=gamma, seed=seed)
    else:
        init, update = ts.nve(model=model, dt=dt, kT=kT, seed=seed)
    state = init(state, kT=kT)
    temperatures, energies, kinetic = [], [], []
    for step in range(1, steps + 1):
        state = update(state, kT=kT) if ensemble == "nvt" else update(state)
        if step % interval == 0 or step == steps:
            temps = ts.quantities.calc_kT(momenta=state.momenta, masses=state.masses,
                                          system_idx=state.system_idx) / float(ts.units.MetalUnits.temperature)
            temperatures.append(temps.detach().cpu().numpy())
            energies.append(state.energy.detach().cpu().numpy())
            kinetic.append(ts.quantities.calc_kinetic_energy(momenta=state.momenta, masses=state.masses,
                                                             system_idx=state.system_idx).detach().cpu().numpy())
            _watch(step, temperatures[-1], energies[-1], temperature_K, timestep_fs)
    finals = state.to_atoms()
    for original, final in zip(structures, finals):
        final.pbc = original.pbc
    return MDResult(finals, np.array(temperatures), np.array(energies), np.array(kinetic))

