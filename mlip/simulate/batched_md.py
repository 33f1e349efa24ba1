"""Molecular dynamics of many structures at once on torch-sim's integrators (Langevin NVT, NVE):
one model call per step serves the whole batch (`mlip.integrations.torchsim.MLIPModel`).

Batched relaxation stays mlip's own FIRE (`mlip.simulate.batched_relax`): measured against
torch-sim's FIRE with the same criteria in `benchmarks/relax_throughput.py`, it reached the same
minima 1.4-1.5x faster on CPU (neighbour lists kept with a skin, no per-system matrix
exponentials), so it is the one batched relaxation path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from ase import Atoms
from tqdm.auto import tqdm

from mlip.models.potential import Potential


def _torchsim():
    try:
        import torch_sim as ts
    except ImportError as exc:
        raise ImportError("batched relaxation and MD run on torch-sim: pip install 'mlip[torchsim]'") from exc
    from mlip.integrations.torchsim import MLIPModel

    return ts, MLIPModel


def atoms_partly_periodic(atoms: Atoms) -> bool:
    return bool(atoms.pbc.any()) and not bool(atoms.pbc.all())


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
           ensemble: str = "nvt", friction_per_fs: float = 0.01, interval: int = 10, seed: int = 0,
           compile: bool = False, progress: bool = False,
           on_report: Callable[[int, list[Atoms]], None] | None = None) -> MDResult:
    """Langevin NVT (or NVE) MD of all `structures` in one batch, `steps` steps of `timestep_fs`.

    Velocities start from Maxwell-Boltzmann at `temperature_K` (seeded). Structures must all be
    periodic or all be molecules (torch-sim's periodicity is per batch). Every `interval` steps
    the watchdog of `mlip.simulate.md` (non-finite energies, temperatures above 10x the target)
    stops the run with `MDInstabilityError` naming the step and the structure. `compile`: the
    network under torch.compile (`mlip.export.compiled.compile_potential`). `progress`: a bar of the steps
    on stderr. `on_report(step, structures)`: called every `interval` steps (and at the last) with the
    structures then, positions Å and velocities (ASE units) set: e.g. to write trajectories.
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
    model = MLIPModel(potential, compute_stress=False, compile=compile)
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
    bar = tqdm(total=steps, desc=f"MD ({len(structures)} structures)", unit="step", disable=not progress)
    for step in range(1, steps + 1):
        bar.update(1)
        state = update(state, kT=kT) if ensemble == "nvt" else update(state)
        if step % interval == 0 or step == steps:
            temps = ts.quantities.calc_kT(momenta=state.momenta, masses=state.masses,
                                          system_idx=state.system_idx) / float(ts.units.MetalUnits.temperature)
            temperatures.append(temps.detach().cpu().numpy())
            energies.append(state.energy.detach().cpu().numpy())
            kinetic.append(ts.quantities.calc_kinetic_energy(momenta=state.momenta, masses=state.masses,
                                                             system_idx=state.system_idx).detach().cpu().numpy())
            _watch(step, temperatures[-1], energies[-1], temperature_K, timestep_fs)
            if on_report is not None:
                on_report(step, _structures(state, structures))
    bar.close()
    return MDResult(_structures(state, structures), np.array(temperatures), np.array(energies), np.array(kinetic))


def _structures(state, originals: list[Atoms]) -> list[Atoms]:
    """torch-sim's state as ASE structures, each with its original's periodicity."""
    structures = state.to_atoms()
    for original, atoms in zip(originals, structures):
        atoms.pbc = original.pbc
    return structures

