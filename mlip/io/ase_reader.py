"""Frames from any format ASE reads (extended XYZ, ASE .traj/.db, VASP OUTCAR/vasprun.xml, ...)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np

from mlip.io.errors import InvalidStructureError
from mlip.io.frame import Frame

LABELS = ("energy", "forces", "stress")


def lookup_label(atoms: Any, key: str) -> Any | None:
    """Value of `key` from `atoms.info`, `atoms.arrays` or the attached calculator's results."""
    if key in atoms.info:
        return atoms.info[key]
    if key in atoms.arrays:
        return atoms.arrays[key]
    calc = getattr(atoms, "calc", None)
    results = getattr(calc, "results", None) or {}
    return results.get(key)


def frame_from_atoms(
    atoms: Any,
    source: str | None = None,
    index: int | None = None,
    energy_key: str = "energy",
    forces_key: str = "forces",
    stress_key: str = "stress",
    virial_key: str = "virial",
    weight_key: str = "weight",
    require: tuple[str, ...] = (),
) -> Frame:
    """Convert one `ase.Atoms` to a validated `Frame` (labels in eV, Å already)."""
    energy = lookup_label(atoms, energy_key)
    forces = lookup_label(atoms, forces_key)
    stress = lookup_label(atoms, stress_key)
    if stress is None:
        virial = lookup_label(atoms, virial_key)
        if virial is not None:
            volume = abs(float(np.linalg.det(atoms.cell.array)))
            if volume < 1e-9:
                raise InvalidStructureError(f"'{virial_key}' given but the cell has zero volume", source, index)
            stress = -np.reshape(np.asarray(virial, dtype=float), -1) / volume
    weight = lookup_label(atoms, weight_key)
    config_type = atoms.info.get("config_type")
    if forces is None and len(atoms) == 1 and str(config_type).lower().replace("_", "") == "isolatedatom":
        forces = np.zeros((1, 3))  # an isolated atom feels no force; MACE's files often leave it out
    frame = Frame(
        numbers=atoms.numbers,
        positions=atoms.positions,
        cell=atoms.cell.array,
        pbc=atoms.pbc,
        energy=None if energy is None else _scalar(energy, energy_key, source, index),
        forces=forces,
        stress=stress,
        weight=1.0 if weight is None else _scalar(weight, weight_key, source, index),
        source=source,
        index=index,
        config_type=None if config_type is None else str(config_type),
    )
    keys = {"energy": energy_key, "forces": forces_key, "stress": stress_key}
    for label in require:
        if getattr(frame, label) is None:
            raise InvalidStructureError(f"missing requested label '{keys.get(label, label)}' ({label})"
                                        + _key_hint(atoms, label), source, index)
    return frame.validate()


def _key_hint(atoms: Any, label: str) -> str:
    """'; the frame has 'REF_energy': pass energy_key=...' where a key of the frame names `label`, else ''."""
    names = [key for key in list(atoms.info) + list(atoms.arrays) if label in key.lower() and key != label]
    if not names:
        return ""
    quoted = ", ".join(f"'{key}'" for key in names)
    return (f"; the frame has {quoted}: pass {label}_key='{names[0]}' (mlip-preprocess, mlip-eval: --{label}-key "
            f"{names[0]}; mlip-train: --data.{label}_key {names[0]})")


def read_ase(path: str | Path, format: str | None = None, index: str = ":", **options: Any) -> Iterator[Frame]:
    """Yield frames of any file ASE can read; errors name the file and the frame."""
    import ase.io

    source = str(path)
    frames = ase.io.iread(source, index=index, format=format)
    i = 0
    while True:
        try:
            atoms = next(frames)
        except StopIteration:
            return
        except InvalidStructureError:
            raise
        except Exception as exc:  # ASE raises many types for malformed files
            raise InvalidStructureError(f"cannot parse ({type(exc).__name__}: {exc})", source, i) from exc
        yield frame_from_atoms(atoms, source=source, index=i, **options)
        i += 1


def _scalar(value: Any, key: str, source: str | None, index: int | None) -> float:
    try:
        array = np.asarray(value, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise InvalidStructureError(f"label '{key}' must be a number, got {value!r:.40}", source, index) from None
    if array.size != 1:
        raise InvalidStructureError(f"label '{key}' must be one number, got shape {np.shape(value)}", source, index)
    return float(array[0])


def incomplete_vasp_output(path: str | Path, fmt: str | None) -> str | None:
    """Why a VASP output is truncated (a running, killed or cut-off job), or None when complete.

    vasprun.xml must end with `</modeling>`; an OUTCAR with VASP's closing timing summary
    ("General timing and accounting"). ASE would quietly return the steps before the cut.
    """
    if fmt not in ("vasp-xml", "vasp-out"):
        return None
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(size - 65536, 0))
        tail = handle.read()
    if fmt == "vasp-xml" and not tail.rstrip().endswith(b"</modeling>"):
        return "vasprun.xml is incomplete (no closing </modeling>): a running, killed or truncated VASP job"
    if fmt == "vasp-out" and b"General timing and accounting" not in tail:
        return "OUTCAR is incomplete (no closing timing summary): a running, killed or truncated VASP job"
    return None
