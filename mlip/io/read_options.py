"""`ReadOptions`: how to read labelled structure files, one frozen object from the command line to the readers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

LABELS = ("energy", "forces", "stress")


@dataclass(frozen=True)
class ReadOptions:
    """Options of `mlip.io.iread` (see there): the format, label names, required labels, npz energy unit.

    Attributes:
        format: force a format (extxyz, npz, mptrj, cif, poscar, vasp-out, vasp-xml, any ASE name);
            None: from the file name.
        energy_key, forces_key, stress_key, virial_key: label names in extxyz/ASE (and MPtrj) files.
        require: labels every frame must carry, a subset of ("energy", "forces", "stress").
        energy_unit: unit of npz energies when not the layout's default (kcal/mol for MD17).
    """

    format: str | None = None
    energy_key: str = "energy"
    forces_key: str = "forces"
    stress_key: str = "stress"
    virial_key: str = "virial"
    require: tuple[str, ...] = ()
    energy_unit: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "require", tuple(self.require))
        unknown = set(self.require) - set(LABELS)
        if unknown:
            raise ValueError(f"require may only name {', '.join(LABELS)}; got {sorted(unknown)}")

    @classmethod
    def of(cls, options: "ReadOptions | Mapping[str, Any] | None") -> "ReadOptions":
        """`options` as a ReadOptions; a mapping with a key that is not an option is refused, naming it."""
        if options is None:
            return cls()
        if isinstance(options, cls):
            return options
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"unknown read option(s) {unknown}; known: {sorted(known)}")
        return cls(**options)

    def as_kwargs(self) -> dict[str, Any]:
        """The options as keyword arguments of `iread` (JSON-able, for fingerprints too)."""
        values = asdict(self)
        values["require"] = list(self.require)
        return values
