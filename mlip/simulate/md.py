"""Molecular dynamics on any ASE calculator: NVE, NVT (Langevin) and NPT (Berendsen), with a log."""

from __future__ import annotations

import csv
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms, units
from ase.md.langevin import Langevin
from ase.md.nptberendsen import NPTBerendsen
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation
from ase.md.verlet import VelocityVerlet

ENSEMBLES = ("nve", "nvt", "npt")
LOG_FIELDS = ["time_fs", "epot_eV", "ekin_eV", "etot_eV", "temperature_K", "pressure_GPa"]


def make_dynamics(atoms: Atoms, ensemble: str, timestep_fs: float, temperature_K: float, friction_per_fs: float,
                  pressure_GPa: float, seed: int):
    """The ASE integrator for `ensemble`: VelocityVerlet, Langevin or NPTBerendsen."""
    dt = timestep_fs * units.fs
    if ensemble == "nve":
        return VelocityVerlet(atoms, timestep=dt)
    if ensemble == "nvt":
        return Langevin(atoms, timestep=dt, temperature_K=temperature_K, friction=friction_per_fs / units.fs,
                        rng=np.random.default_rng(seed))
    if ensemble == "npt":
        if not atoms.pbc.all():
            raise ValueError("NPT needs a periodic cell")
        return NPTBerendsen(atoms, timestep=dt, temperature_K=temperature_K, pressure_au=pressure_GPa * units.GPa,
                            taut=100 * units.fs, taup=1000 * units.fs, compressibility_au=4.57e-5 / units.bar)
    raise ValueError(f"ensemble must be one of {ENSEMBLES}, got '{ensemble}'")


def run_md(atoms: Atoms, calculator, out: str | Path, ensemble: str = "nve", steps: int = 1000,
           timestep_fs: float = 0.5, temperature_K: float = 300.0, friction_per_fs: float = 0.01,
           pressure_GPa: float = 0.0, interval: int = 10, seed: int = 0) -> Path:
    """Run MD from Maxwell–Boltzmann velocities at `temperature_K`; every `interval` steps append a
    frame to OUT/trajectory.xyz and a row (time, energies, temperature, pressure) to OUT/md_log.csv.
    Returns the log's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atoms.calc = calculator
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=np.random.default_rng(seed))
    Stationary(atoms)
    if not atoms.pbc.any():
        ZeroRotation(atoms)
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
            writer.writerow({"time_fs": dynamics.get_time() / units.fs, "epot_eV": epot, "ekin_eV": ekin,
                             "etot_eV": epot + ekin, "temperature_K": atoms.get_temperature(),
                             "pressure_GPa": pressure})
            ase.io.write(trajectory, atoms, format="extxyz", append=True)

        dynamics.attach(record, interval=interval)  # ASE also calls it once before the first step
        dynamics.run(steps)
    return log_path


def energy_drift(log_path: str | Path) -> float:
    """Slope of total energy against time from an MD log, meV/atom/ps (least squares)."""
    rows = list(csv.DictReader(open(log_path)))
    time_ps = np.array([float(r["time_fs"]) for r in rows]) / 1000
    energy = np.array([float(r["etot_eV"]) for r in rows])
    n_atoms = len(ase.io.read(Path(log_path).with_name("trajectory.xyz"), index=0))
    return float(np.polyfit(time_ps, energy, 1)[0] * 1e3 / n_atoms)
