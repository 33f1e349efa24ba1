"""Unlabelled crystals from CIF and POSCAR/CONTCAR files, via pymatgen."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np

from mlip.io.errors import InvalidStructureError
from mlip.io.frame import Frame


def frame_from_structure(structure: Any, source: str | None = None, index: int | None = None) -> Frame:
    """A `Frame` (no labels) from a `pymatgen.core.Structure` or `Molecule`."""
    lattice = getattr(structure, "lattice", None)
    if lattice is None:  # a Molecule
        cell, pbc = np.zeros((3, 3)), np.zeros(3, dtype=bool)
    else:
        cell, pbc = lattice.matrix, np.asarray(getattr(lattice, "pbc", (True, True, True)))
    try:
        numbers = np.array([site.specie.Z for site in structure], dtype=np.int64)
    except AttributeError as exc:  # disordered sites have compositions, not one species
        raise InvalidStructureError(f"disordered or unknown species cannot be used ({exc})", source, index) from exc
    return Frame(numbers=numbers, positions=structure.cart_coords, cell=cell, pbc=pbc, source=source, index=index)


def read_pymatgen(path: str | Path, format: str | None = None) -> Iterator[Frame]:
    """Yield the structures of a CIF (all data blocks) or a POSCAR/CONTCAR file, unlabelled."""
    source = str(path)
    name = Path(path).name.lower()
    try:
        if format == "cif" or (format is None and name.endswith(".cif")):
            from pymatgen.io.cif import CifParser

            structures = CifParser(source).parse_structures(primitive=False)
        else:
            from pymatgen.io.vasp import Poscar

            structures = [Poscar.from_file(source).structure]
    except Exception as exc:
        raise InvalidStructureError(f"cannot parse ({type(exc).__name__}: {exc})", source) from exc
    for i, structure in enumerate(structures):
        yield frame_from_structure(structure, source, i).validate()
