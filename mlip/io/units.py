"""Unit conversion factors to mlip's internal units (eV, Å, eV/Å, eV/Å³).

Only readers use these: everything past `mlip.io` is in eV and Å.
"""

from __future__ import annotations

from ase import units as _ase_units

#: 1 kcal/mol in eV (≈ 0.0433641).
KCAL_PER_MOL = _ase_units.kcal / _ase_units.mol
#: 1 kBar in eV/Å³ (1 kBar = 0.1 GPa).
KBAR = 0.1 * _ase_units.GPa
#: 1 GPa in eV/Å³.
GPA = _ase_units.GPa
#: 1 Hartree in eV.
HARTREE = _ase_units.Hartree
#: 1 Bohr in Å.
BOHR = _ase_units.Bohr

ENERGY_UNITS: dict[str, float] = {
    "eV": 1.0,
    "meV": 1e-3,
    "kcal/mol": KCAL_PER_MOL,
    "kJ/mol": _ase_units.kJ / _ase_units.mol,
    "Hartree": HARTREE,
    "Ha": HARTREE,
}


def energy_factor(unit: str) -> float:
    """Factor that turns an energy in `unit` into eV."""
    try:
        return ENERGY_UNITS[unit]
    except KeyError:
        raise ValueError(f"unknown energy unit '{unit}'; choose one of {sorted(ENERGY_UNITS)}") from None
