"""Molecular dynamics on any ASE calculator: NVE, NVT (Langevin) and NPT (Berendsen), with a log."""

from __future__ import annotations

import csv
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms, units
from ase.constraints import FixCom
from ase.md.langevin import Langevin
from ase.md.nptberendsen import NPTBerendsen
from ase.md import velocitydistribution
from ase.md.velocitydistribution import Stationary, ZeroRotation
from ase.md.verlet import VelocityVerlet
from tqdm.auto import tqdm

ENSEMBLES = ("nve", "nvt", "npt")
HOT_FACTOR = 10.0  # a temperature above HOT_FACTOR × max(target, 300 K) stops the run
MIN_DISTANCE = 0.5  # Å: two atoms closer than this have collapsed onto each other


class MDInstabilityError(RuntimeError):
    """The dynamics blew up: non-finite energy or forces, runaway temperature, or collapsed atoms."""


def closest_pair(atoms: Atoms, within: float) -> float | None:
    """The shortest interatomic distance below `within` Å (periodic images included), or None."""
    from mlip.graph.neighbors import neighbor_list

    receivers, senders, shifts = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, within)
    if len(receivers) == 0:
        return None
    vectors = atoms.positions[senders] + shifts @ atoms.cell.array - atoms.positions[receivers]
    return float(np.linalg.norm(vectors, axis=1).min())


def watchdog(atoms: Atoms, dynamics, temperature_K: float, timestep_fs: float):
    """A step callback that raises `MDInstabilityError`, naming the step and what went wrong."""
    limit = HOT_FACTOR * max(temperature_K, 300.0)

    def check() -> None:
        step = dynamics.nsteps
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        if not (np.isfinite(energy) and np.isfinite(forces).all()):
            raise MDInstabilityError(f"step {step}: non-finite energy or forces")
        temperature = atoms.get_temperature()
        if temperature > limit:
            raise MDInstabilityError(f"step {step}: temperature {temperature:.0f} K exceeds {limit:.0f} K "
                                     f"({HOT_FACTOR:g}x the target): the dynamics is unstable; try a shorter time "
                                     f"step than {timestep_fs:g} fs, or the model fails in this region")
        closest = closest_pair(atoms, MIN_DISTANCE)
        if closest is not None:
            raise MDInstabilityError(f"step {step}: two atoms are {closest:.3f} Å apart (below {MIN_DISTANCE} Å): "
                                     f"the structure collapsed")

    return check


# Maxwell-Boltzmann momenta: ASE >= 3.28 names it thermalize_momenta (the old name warns)
THERMALIZE = (getattr(velocitydistribution, "thermalize_momenta", None)
              or velocitydistribution.MaxwellBoltzmannDistribution)
LOG_FIELDS = ["time_fs", "epot_eV", "ekin_eV", "etot_eV", "temperature_K", "pressure_GPa"]


def make_dynamics(atoms: Atoms, ensemble: str, timestep_fs: float, temperature_K: float, friction_per_fs: float,
                  pressure_GPa: float, seed: int):
    """The ASE integrator for `ensemble`: VelocityVerlet, Langevin or NPTBerendsen."""
    dt = timestep_fs * units.fs
    if ensemble == "nve":
        return VelocityVerlet(atoms, timestep=dt)
    if ensemble == "nvt":  # the centre of mass held by a constraint (`run_md`), not by Langevin's fixcm (biased)
        return Langevin(atoms, timestep=dt, temperature_K=temperature_K, friction=friction_per_fs / units.fs,
                        fixcm=False, rng=np.random.default_rng(seed))
    if ensemble == "npt":
        if not atoms.pbc.all():
            raise ValueError("NPT needs a periodic cell")
        return NPTBerendsen(atoms, timestep=dt, temperature_K=temperature_K, pressure_au=pressure_GPa * units.GPa,
                            taut=100 * units.fs, taup=1000 * units.fs, compressibility_au=4.57e-5 / units.bar)
    raise ValueError(f"ensemble must be one of {ENSEMBLES}, got '{ensemble}'")


def run_md(atoms: Atoms, calculator, out: str | Path, ensemble: str = "nve", steps: int = 1000,
           timestep_fs: float = 0.5, temperature_K: float = 300.0, friction_per_fs: float = 0.01,
           pressure_GPa: float = 0.0, interval: int = 10, seed: int = 0, progress: bool = False) -> Path:
    """Run MD from Maxwell–Boltzmann velocities at `temperature_K`; every `interval` steps append a
    frame to OUT/trajectory.xyz and a row (time, energies, temperature, pressure) to OUT/md_log.csv.
    Every step a watchdog stops the run with `MDInstabilityError` (non-finite energy or forces, a
    temperature above 10x the target, atoms closer than 0.5 Å); the files keep what came before.
    `progress`: a bar of the steps on stderr. Returns the log's path."""
    if not timestep_fs > 0 or steps < 1 or interval < 1:
        raise ValueError(f"need timestep > 0 fs, steps >= 1 and interval >= 1; got {timestep_fs}, {steps}, {interval}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atoms.calc = calculator
    THERMALIZE(atoms, temperature_K=temperature_K, rng=np.random.default_rng(seed))
    Stationary(atoms)
    if not atoms.pbc.any():
        ZeroRotation(atoms)
    constraints = list(atoms.constraints)
    if ensemble == "nvt":  # Langevin's random kicks would move the centre of mass: hold it (ASE's FixCom)
        atoms.set_constraint(constraints + [FixCom()])
    dynamics = make_dynamics(atoms, ensemble, timestep_fs, temperature_K, friction_per_fs, pressure_GPa, seed)
    trajectory, log_path = out / "trajectory.xyz", out / "md_log.csv"
    trajectory.unlink(missing_ok=True)
    periodic = bool(atoms.pbc.all())
    with open(log_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=LOG_FIELDS)
        writer.writeheader()

        def record() -> None:
            epot, ekin = atoms.get_potential_energy(), atoms.get_kinetic_energy()
            pressure = -np.trace(atoms.get_stress(voigt=False)) / 3 / units.GPa if periodic else float("nan")
            writer.writerow({"time_fs": round(dynamics.get_time() / units.fs, 9), "epot_eV": epot, "ekin_eV": ekin,
                             "etot_eV": epot + ekin, "temperature_K": atoms.get_temperature(),
                             "pressure_GPa": pressure})
            ase.io.write(trajectory, atoms, format="extxyz", append=True)

        dynamics.attach(record, interval=interval)  # ASE also calls it once before the first step
        dynamics.attach(watchdog(atoms, dynamics, temperature_K, timestep_fs), interval=1)
        bar = tqdm(total=steps, desc=f"MD ({ensemble})", unit="step", disable=not progress)
        dynamics.attach(lambda: bar.update(1) if dynamics.nsteps > 0 else None, interval=1)
        try:
            dynamics.run(steps)
        finally:
            bar.close()
            handle.flush()
            atoms.set_constraint(constraints)  # the caller's atoms get back their own constraints
    return log_path


def energy_drift(log_path: str | Path) -> float:
    """Slope of total energy against time from an MD log, meV/atom/ps (least squares)."""
    rows = list(csv.DictReader(open(log_path)))
    time_ps = np.array([float(r["time_fs"]) for r in rows]) / 1000
    energy = np.array([float(r["etot_eV"]) for r in rows])
    n_atoms = len(ase.io.read(Path(log_path).with_name("trajectory.xyz"), index=0))
    return float(np.polyfit(time_ps, energy, 1)[0] * 1e3 / n_atoms)
