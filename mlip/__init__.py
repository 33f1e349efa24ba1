"""mlip: machine-learned interatomic potentials, from DFT files to simulations.

Units everywhere inside: eV, Å, eV/Å, eV/Å³, fs.
"""

__version__ = "0.1.0"
