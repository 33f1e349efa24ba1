"""MD17 / rMD17-style NumPy archives (one molecule, many conformations)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from mlip.io.errors import InvalidStructureError
from mlip.io.frame import Frame
from mlip.io.units import energy_factor

# (numbers, positions, energies, forces) key names of the known layouts.
LAYOUTS = {
    "rmd17": ("nuclear_charges", "coords", "energies", "forces"),
    "md17": ("z", "R", "E", "F"),
    "plain": ("numbers", "positions", "energy", "forces"),
}
DEFAULT_UNITS = {"rmd17": "kcal/mol", "md17": "kcal/mol", "plain": "eV"}


def read_npz(path: str | Path, energy_unit: str | None = None, require: tuple[str, ...] = (),
             start: int = 0, stop: int | None = None) -> Iterator[Frame]:
    """Yield frames of an MD17-style npz; energies/forces converted to eV and eV/Å.

    rMD17 (`nuclear_charges`, `coords`, `energies`, `forces`) and MD17 (`z`, `R`, `E`, `F`)
    are in kcal/mol and kcal/mol/Å; a plain layout (`numbers`, `positions`, `energy`,
    `forces`) is taken to be in eV unless `energy_unit` says otherwise. Only frames
    [start, stop) are yielded (indices stay those of the whole file).
    """
    source = str(path)
    try:
        archive = np.load(source)
    except Exception as exc:
        raise InvalidStructureError(f"cannot read as npz ({type(exc).__name__}: {exc})", source) from exc
    with archive:
        layout = next((name for name, keys in LAYOUTS.items() if keys[0] in archive and keys[1] in archive), None)
        if layout is None:
            raise InvalidStructureError(
                f"not an MD17-style npz: expected one of {[k[:2] for k in LAYOUTS.values()]}, found keys {sorted(archive.files)}",
                source,
            )
        z_key, r_key, e_key, f_key = LAYOUTS[layout]
        factor = energy_factor(energy_unit or DEFAULT_UNITS[layout])
        raw_numbers = np.asarray(archive[z_key])
        if not np.issubdtype(raw_numbers.dtype, np.number) or not np.all(np.isfinite(raw_numbers)) \
                or not np.all(raw_numbers == np.round(raw_numbers)):
            bad = next((i for i, z in enumerate(raw_numbers.reshape(-1)) if not _is_integral(z)), 0)
            raise InvalidStructureError(f"'{z_key}' must hold integer atomic numbers, got "
                                        f"{raw_numbers.reshape(-1)[bad]!r} at atom {bad}", source)
        numbers = raw_numbers.astype(np.int64)
        coords = np.asarray(archive[r_key], dtype=np.float64)
        energies = np.asarray(archive[e_key], dtype=np.float64).reshape(-1) * factor if e_key in archive else None
        forces = np.asarray(archive[f_key], dtype=np.float64) * factor if f_key in archive else None
    if coords.ndim == 2:
        coords = coords[None]
    for label, values in (("energy", energies), ("forces", forces)):
        if label in require and values is None:
            raise InvalidStructureError(f"missing requested label '{label}'", source)
    if energies is not None and len(energies) != len(coords):
        raise InvalidStructureError(f"{len(energies)} energies for {len(coords)} frames", source)
    if forces is not None and (forces.ndim != 3 or forces.shape[0] != len(coords)):
        raise InvalidStructureError(f"forces must have shape (frames, atoms, 3), got {forces.shape}", source)
    for i in range(start, len(coords) if stop is None else min(stop, len(coords))):
        yield Frame(
            numbers=numbers,
            positions=coords[i],
            energy=None if energies is None else energies[i],
            forces=None if forces is None else forces[i],
            source=source,
            index=i,
        ).validate()


def _is_integral(value) -> bool:
    try:
        return bool(np.isfinite(float(value)) and float(value) == round(float(value)))
    except (TypeError, ValueError):
        return False
