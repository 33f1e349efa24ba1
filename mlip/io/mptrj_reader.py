"""MPtrj-style JSON: pymatgen structure dicts with energy, forces and stress (kBar).

Accepted layouts: the MPtrj release `{mp_id: {frame_id: record}}`, a list of records, or a
list of bare pymatgen `Structure.as_dict()` (unlabelled structures, e.g. for mlip-relax).
Each record has `structure` (a pymatgen `Structure.as_dict()`), an energy (key
`uncorrected_total_energy` by default, eV per cell), `force` (eV/Å) and `stress`
(kBar, VASP sign: positive = compressive). Stress is converted to eV/Å³ with ASE's sign.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from mlip.io.errors import InvalidStructureError
from mlip.io.frame import Frame
from mlip.io.units import KBAR


def frame_from_structure_dict(structure: dict, source: str | None, index: int | None) -> Frame:
    """A `Frame` from a pymatgen `Structure.as_dict()` record, parsed directly (~20x faster than
    `Structure.from_dict`). Ordered structures only: a disordered site raises."""
    from ase.data import atomic_numbers

    try:
        lattice = structure["lattice"]
        cell = np.asarray(lattice["matrix"], dtype=float)
        numbers, positions = [], []
        for k, site in enumerate(structure["sites"]):
            species = site["species"]
            if len(species) != 1 or abs(float(species[0].get("occu", 1.0)) - 1.0) > 1e-8:
                raise InvalidStructureError(f"site {k} is disordered ({species}); only ordered structures can be used",
                                            source, index)
            symbol = species[0]["element"]
            if symbol not in atomic_numbers:
                raise InvalidStructureError(f"unknown element symbol '{symbol}' at site {k}", source, index)
            numbers.append(atomic_numbers[symbol])
            positions.append(site["xyz"] if "xyz" in site else np.asarray(site["abc"], dtype=float) @ cell)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise InvalidStructureError(f"not a valid pymatgen structure ({type(exc).__name__}: {exc})", source, index) from exc
    return Frame(numbers=np.array(numbers, dtype=np.int64), positions=np.array(positions, dtype=float).reshape(-1, 3),
                 cell=cell, pbc=lattice.get("pbc", (True, True, True)), source=source, index=index)


def _records(data: Any) -> Iterator[tuple[str, dict]]:
    if isinstance(data, list):
        for i, record in enumerate(data):  # MPtrj-style records, or bare Structure.as_dict() (unlabelled)
            is_structure = isinstance(record, dict) and "lattice" in record and "sites" in record
            yield str(i), {"structure": record} if is_structure else record
    elif isinstance(data, dict) and "structure" in data:
        yield "0", data
    elif isinstance(data, dict):
        for mp_id, frames in data.items():
            if isinstance(frames, dict) and "structure" not in frames:
                for frame_id, record in frames.items():
                    yield f"{mp_id}/{frame_id}", record
            else:
                yield str(mp_id), frames
    else:
        raise TypeError(f"expected a JSON object or list, got {type(data).__name__}")


def read_mptrj(
    path: str | Path,
    energy_key: str = "uncorrected_total_energy",
    forces_key: str = "force",
    stress_key: str = "stress",
    require: tuple[str, ...] = (),
) -> Iterator[Frame]:
    """Yield labelled frames from an MPtrj-style JSON file (eV, eV/Å, eV/Å³)."""
    source = str(path)
    try:
        with open(source) as handle:
            data = json.load(handle)
        records = list(_records(data))
    except Exception as exc:
        raise InvalidStructureError(f"cannot parse as MPtrj JSON ({type(exc).__name__}: {exc})", source) from exc
    keys = {"energy": energy_key, "forces": forces_key, "stress": stress_key}
    for index, (name, record) in enumerate(records):
        if not isinstance(record, dict) or "structure" not in record:
            raise InvalidStructureError(f"record '{name}' has no 'structure'", source, index)
        for label in require:
            if record.get(keys[label]) is None:
                raise InvalidStructureError(f"record '{name}' is missing requested label '{keys[label]}'", source, index)
        frame = frame_from_structure_dict(record["structure"], source, index)
        stress = record.get(stress_key)
        yield frame.with_labels(
            energy=record.get(energy_key),
            forces=record.get(forces_key),
            stress=None if stress is None else -KBAR * np.asarray(stress, dtype=float),
        ).validate()
