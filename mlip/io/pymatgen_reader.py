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
    from pymatgen.core.periodic_table import DummySpecies

    numbers = []
    for i, site in enumerate(structure):
        if not site.is_ordered:
            raise InvalidStructureError(f"site {i} is disordered ({site.species}); mlip needs one element per site",
                                        source, index)
        specie = site.specie
        if isinstance(specie, DummySpecies):  # what pymatgen makes of symbols that are no element
            raise InvalidStructureError(f"site {i} has an unknown species '{specie}'", source, index)
        numbers.append(specie.Z)
    numbers = np.array(numbers, dtype=np.int64)
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

            problem = poscar_count_problem(Path(path).read_text())
            if problem:
                raise InvalidStructureError(problem, source)
            structures = [Poscar.from_file(source).structure]
    except InvalidStructureError:
        raise
    except Exception as exc:
        raise InvalidStructureError(f"cannot parse ({type(exc).__name__}: {exc})", source) from exc
    for i, structure in enumerate(structures):
        yield frame_from_structure(structure, source, i).validate()


def poscar_count_problem(text: str) -> str | None:
    """Whether a POSCAR's atom counts disagree with its coordinate lines (pymatgen would read
    only the first `sum(counts)` lines, or fail without saying why); None when they agree.

    The coordinate block runs from the line after "Direct"/"Cartesian" to the first blank line
    (a CONTCAR's velocities come after one) or the end of the file.
    """
    lines = text.splitlines()
    if len(lines) < 7:
        return f"POSCAR has {len(lines)} lines; a header needs at least 7"
    row = 5 if lines[5].split() and not lines[5].split()[0].lstrip("-").isdigit() else 4  # species line?
    try:
        counts = [int(word) for word in lines[row + 1].split()]
    except ValueError:
        return f"line {row + 2} should hold the atom counts, found {lines[row + 1][:40]!r}"
    row += 2
    if row < len(lines) and lines[row].strip()[:1] in ("s", "S"):
        row += 1  # selective dynamics
    block = []
    for line in lines[row + 1:]:
        if not line.strip():
            break
        block.append(line)
    if len(block) != sum(counts):
        return f"atom counts {counts} add up to {sum(counts)} but {len(block)} coordinate lines follow"
    return None
