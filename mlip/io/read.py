"""`read`/`iread`: any supported file (or folder of files) to `Frame`s."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any, Iterable, Iterator

from mlip.io.ase_reader import incomplete_vasp_output, read_ase
from mlip.io.errors import InvalidStructureError
from mlip.io.frame import Frame
from mlip.io.mptrj_reader import read_mptrj
from mlip.io.npz_reader import read_npz
from mlip.io.pymatgen_reader import read_pymatgen
from mlip.io.read_options import ReadOptions

# File-name patterns (lower case) to mlip format names; anything else goes to ASE's own detection.
NAME_PATTERNS = (
    ("*.npz", "npz"),
    ("*.json", "mptrj"),
    ("*.cif", "cif"),
    ("poscar*", "poscar"),
    ("contcar*", "poscar"),
    ("*.vasp", "poscar"),
    ("*.poscar", "poscar"),
    ("outcar*", "vasp-out"),
    ("vasprun*.xml", "vasp-xml"),
    ("*.xyz", "extxyz"),
    ("*.extxyz", "extxyz"),
)
ALIASES = {"md17": "npz", "rmd17": "npz", "outcar": "vasp-out", "vasprun": "vasp-xml", "xyz": "extxyz"}


def detect_format(path: str | Path) -> str | None:
    """mlip's format name for a file, or None to let ASE guess."""
    name = Path(path).name.lower()
    for pattern, fmt in NAME_PATTERNS:
        if fnmatch.fnmatch(name, pattern):
            return fmt
    return None


def known_format(path: str | Path) -> bool:
    """Whether the file's name says a format mlip or ASE reads (`detect_format`, or an ASE
    format known by its extension or name such as .traj, .db, .cfg)."""
    if detect_format(path) is not None:
        return True
    from ase.io.formats import UnknownFileTypeError, filetype, ioformats

    try:
        return filetype(str(path), read=False) in ioformats
    except (UnknownFileTypeError, ValueError):
        return False


def expand_paths(paths: Iterable[str | Path], skipped: list[Path] | None = None) -> list[Path]:
    """Files named directly, plus the files of a known format inside named folders (sorted, not
    hidden); the others are appended to `skipped` when given.

    Raises:
        InvalidStructureError: a path that does not exist, or a folder with no file of a known format.
    """
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            inside = [p for p in sorted(path.iterdir()) if p.is_file() and not p.name.startswith(".")]
            known = [p for p in inside if known_format(p)]
            if not known:
                listed = ", ".join(p.name for p in inside[:5]) + (", ..." if len(inside) > 5 else "")
                raise InvalidStructureError(f"folder holds no structure file of a known format"
                                            f"{f' (found {listed})' if inside else ' (it is empty)'}", str(path))
            files.extend(known)
            if skipped is not None:
                skipped.extend(p for p in inside if p not in known)
        elif path.exists():
            files.append(path)
        else:
            raise InvalidStructureError("file does not exist", str(path))
    return files


def iread(
    path: str | Path,
    format: str | None = None,
    energy_key: str = "energy",
    forces_key: str = "forces",
    stress_key: str = "stress",
    virial_key: str = "virial",
    require: Iterable[str] = (),
    energy_unit: str | None = None,
) -> Iterator[Frame]:
    """Yield validated frames (eV, Å, eV/Å, eV/Å³) from one file or a folder of files.

    Args:
        path: file or folder. Formats: extended XYZ and all ASE formats, MD17/rMD17 npz,
            VASP OUTCAR/vasprun.xml, CIF/POSCAR (via pymatgen), MPtrj-style JSON.
        format: force a format (`extxyz`, `npz`, `mptrj`, `cif`, `poscar`, `vasp-out`,
            `vasp-xml`, or any ASE format name); default: from the file name.
        energy_key, forces_key, stress_key, virial_key: label names in extxyz/ASE files
            (e.g. `REF_energy`); for MPtrj JSON, non-default keys are passed on.
        require: labels ("energy", "forces", "stress") that every frame must have.
        energy_unit: unit of npz energies when not the layout's default (kcal/mol for MD17).

    Raises:
        InvalidStructureError: naming the file, the frame and the problem.
    """
    required = ReadOptions(require=tuple(require)).require  # validated
    for file in expand_paths([path]):
        fmt = ALIASES.get(format, format) if format else detect_format(file)
        source = str(file)
        if file.stat().st_size == 0:
            raise InvalidStructureError("file is empty", source)
        truncated = incomplete_vasp_output(file, fmt)
        if truncated:
            raise InvalidStructureError(truncated, source)
        if fmt == "npz":
            yield from read_npz(file, energy_unit=energy_unit, require=required)
        elif fmt == "mptrj":
            options: dict[str, Any] = {"require": required}
            if energy_key != "energy":
                options["energy_key"] = energy_key
            if forces_key != "forces":
                options["forces_key"] = forces_key
            if stress_key != "stress":
                options["stress_key"] = stress_key
            yield from read_mptrj(file, **options)
        elif fmt in ("cif", "poscar"):
            if required:
                raise InvalidStructureError(f"{fmt} files carry no labels, but {list(required)} were required", source)
            yield from read_pymatgen(file, format=fmt)
        else:
            yield from read_ase(
                file,
                format=fmt,
                energy_key=energy_key,
                forces_key=forces_key,
                stress_key=stress_key,
                virial_key=virial_key,
                require=required,
            )


def read(path: str | Path, format: str | None = None, **options: Any) -> list[Frame]:
    """All frames of a file or folder as a list; see `iread` for the options."""
    return list(iread(path, format=format, **options))
