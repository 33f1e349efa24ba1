"""NVT (Langevin) molecular dynamics: python md_scripts/nvt_langevin.py MODEL STRUCTURE [STEPS] [T_K]."""

import sys

import ase.io
from ase import units
from ase.constraints import FixCom
from ase.md.langevin import Langevin

from mlip.calculator import MLIPCalculator
from mlip.simulate.md import THERMALIZE  # ASE's Maxwell-Boltzmann momenta, under its current name

model, structure = sys.argv[1], sys.argv[2]
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
temperature = float(sys.argv[4]) if len(sys.argv) > 4 else 300.0
atoms = ase.io.read(structure, index=0)
atoms.calc = MLIPCalculator(model)
THERMALIZE(atoms, temperature_K=temperature)
# the centre of mass held by a constraint: ASE's own fixcm=True does not sample NVT exactly (deprecated in 3.28)
atoms.set_constraint([*atoms.constraints, FixCom()])
dynamics = Langevin(atoms, timestep=0.5 * units.fs, temperature_K=temperature, friction=0.01 / units.fs, fixcm=False,
                    trajectory="nvt.traj", logfile="nvt.log", loginterval=20)
dynamics.run(steps)
print(f"{steps} steps at {temperature} K: final temperature {atoms.get_temperature():.0f} K; nvt.traj, nvt.log")
