"""NPT (Berendsen) dynamics of a periodic cell: python md_scripts/npt_berendsen.py MODEL STRUCTURE [STEPS]."""

import sys

import ase.io
from ase import units
from ase.md.nptberendsen import NPTBerendsen

from mlip.calculator import MLIPCalculator
from mlip.simulate.md import THERMALIZE  # ASE's Maxwell-Boltzmann momenta, under its current name

model, structure = sys.argv[1], sys.argv[2]
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
atoms = ase.io.read(structure, index=0)
atoms.calc = MLIPCalculator(model)
THERMALIZE(atoms, temperature_K=300)
dynamics = NPTBerendsen(atoms, timestep=1.0 * units.fs, temperature_K=300, pressure_au=0.0, taut=100 * units.fs,
                        taup=1000 * units.fs, compressibility_au=4.57e-5 / units.bar,
                        trajectory="npt.traj", logfile="npt.log", loginterval=20)
volume = atoms.get_volume()
dynamics.run(steps)
print(f"{steps} steps: volume {volume:.2f} -> {atoms.get_volume():.2f} Å³; npt.traj, npt.log")
