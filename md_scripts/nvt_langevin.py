"""NVT (Langevin) molecular dynamics: python md_scripts/nvt_langevin.py MODEL STRUCTURE [STEPS] [T_K]."""

import sys

import ase.io
from ase import units
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

from mlip.calculator import MLIPCalculator

model, structure = sys.argv[1], sys.argv[2]
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
temperature = float(sys.argv[4]) if len(sys.argv) > 4 else 300.0
atoms = ase.io.read(structure, index=0)
atoms.calc = MLIPCalculator(model)
MaxwellBoltzmannDistribution(atoms, temperature_K=temperature)
dynamics = Langevin(atoms, timestep=0.5 * units.fs, temperature_K=temperature, friction=0.01 / units.fs,
                    trajectory="nvt.traj", logfile="nvt.log", loginterval=20)
dynamics.run(steps)
print(f"{steps} steps at {temperature} K: final temperature {atoms.get_temperature():.0f} K; nvt.traj, nvt.log")
