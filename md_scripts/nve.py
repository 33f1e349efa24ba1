"""NVE molecular dynamics with an mlip model: python md_scripts/nve.py MODEL STRUCTURE [STEPS]."""

import sys

import ase.io
from ase import units
from ase.md.velocitydistribution import Stationary
from ase.md.verlet import VelocityVerlet

from mlip.calculator import MLIPCalculator
from mlip.simulate.md import THERMALIZE  # ASE's Maxwell-Boltzmann momenta, under its current name

model, structure = sys.argv[1], sys.argv[2]
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
atoms = ase.io.read(structure, index=0)
atoms.calc = MLIPCalculator(model)
THERMALIZE(atoms, temperature_K=300)
Stationary(atoms)
dynamics = VelocityVerlet(atoms, timestep=0.5 * units.fs, trajectory="nve.traj", logfile="nve.log", loginterval=20)
start = atoms.get_total_energy()
dynamics.run(steps)
picoseconds = steps * 0.5 / 1000
drift = (atoms.get_total_energy() - start) / len(atoms) / picoseconds * 1000
print(f"{steps} steps: total energy changed by {drift:+.3f} meV/atom/ps; trajectory nve.traj, log nve.log")
