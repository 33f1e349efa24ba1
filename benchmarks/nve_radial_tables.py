"""NVE with the compiled, tabulated radial functions against eager float32: energy drift and trajectory.

    python benchmarks/nve_radial_tables.py MODEL.mlip

64-atom diamond Si at 600 K (Maxwell-Boltzmann, seed 0), velocity Verlet at 1 fs for 500 steps through
`MLIPCalculator` in float32, eagerly and with `compile=True` (radial tables): total-energy drift and largest
deviation (meV/atom), wall time, and the largest position difference between the two runs at the end (Å).
"""
import sys
import time

import numpy as np
from ase import units
from ase.build import bulk
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet

from mlip.calculator import MLIPCalculator

model = sys.argv[1]
res = {}
for name, kw in (("eager32", dict(dtype="float32")), ("compiled32_tables", dict(dtype="float32", compile=True))):
    atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)
    MaxwellBoltzmannDistribution(atoms, temperature_K=600, rng=np.random.default_rng(0))
    atoms.calc = MLIPCalculator(model, **kw)
    e0 = atoms.get_total_energy(); t = time.perf_counter()
    dyn = VelocityVerlet(atoms, 1.0 * units.fs)
    energies = []
    dyn.attach(lambda: energies.append(atoms.get_total_energy()), interval=10)
    dyn.run(500)
    energies = np.array(energies)
    res[name] = atoms.positions.copy()
    print(name, "drift meV/atom", round((energies[-1]-e0)*1000/len(atoms), 3), "max dev meV/atom", round(np.abs(energies-e0).max()*1000/len(atoms), 3), "s", round(time.perf_counter()-t,1), flush=True)
print("max position difference after 500 fs (A)", np.abs(res["eager32"]-res["compiled32_tables"]).max())
