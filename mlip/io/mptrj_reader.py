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


VASP_SHEAR_ORDER = ("xy", "yz", "zx")


def mlearn_shear_order(records: list[dict]) -> tuple[str, str, str]:
    """Which shear component each of `virial_stress`'s last three entries holds, read off the data.

    mlearn files disagree (Si: XY YZ ZX, as VASP writes; Mo: XY ZX YZ). The `Elastic` group
    strains one cell mode by mode, so for every pure-shear cell the strained component
    (from its cell against the group's mean cell) names the entry that carries the stress.
    Files without such cells get VASP's order.
    """
    elastic = [r for r in records if r.get("group") == "Elastic" and isinstance(r.get("outputs"), dict)
               and r["outputs"].get("virial_stress") is not None]
    if not elastic:
        return VASP_SHEAR_ORDER
    sizes = [len(r["structure"]["sites"]) for r in elastic]
    common = max(set(sizes), key=sizes.count)
    elastic = [r for r, n in zip(elastic, sizes) if n == common]
    cells = np.array([r["structure"]["lattice"]["matrix"] for r in elastic], dtype=float)
    ground = [c for c, r in zip(cells, elastic) if "ground state" in str(r.get("description", "")).lower()]
    reference = ground[0] if ground else cells.mean(axis=0)
    order: dict[int, str] = {}
    names = {(0, 1): "xy", (1, 2): "yz", (0, 2): "zx"}
    for cell, record in zip(cells, elastic):
        deformation = np.linalg.solve(reference, cell).T
        strain = 0.5 * (deformation + deformation.T) - np.eye(3)
        shear = {name: abs(strain[i, j]) for (i, j), name in names.items()}
        component = max(shear, key=shear.get)
        if shear[component] < 5e-3 or shear[component] < 3 * max(abs(np.diag(strain))):
            continue  # not a pure-shear cell
        entries = np.abs(np.asarray(record["outputs"]["virial_stress"], dtype=float)[3:])
        order.setdefault(int(np.argmax(entries)), component)
    if sorted(order) != [0, 1, 2] or len(set(order.values())) != 3:
        return VASP_SHEAR_ORDER
    return tuple(order[k] for k in range(3))  # type: ignore[return-value]


def mlearn_labels(outputs: dict, keys: dict[str, str], shear_order: tuple[str, str, str] = VASP_SHEAR_ORDER
                  ) -> dict[str, Any]:
    """Labels of an mlearn record's `outputs` (energy eV, forces eV/Å, `virial_stress` kBar) under `keys`.

    `virial_stress` is XX YY ZZ and three shears in `shear_order` (see `mlearn_shear_order`),
    positive compressive (VASP's sign). Returned as a 3×3 in kBar with VASP's sign, as
    MPtrj's `stress`.
    """
    labels: dict[str, Any] = {keys["energy"]: outputs.get("energy"), keys["forces"]: outputs.get("forces")}
    virial = outputs.get("virial_stress")
    if virial is not None:
        values = [float(v) for v in virial]
        shear = dict(zip(shear_order, values[3:]))
        labels[keys["stress"]] = [[values[0], shear["xy"], shear["zx"]], [shear["xy"], values[1], shear["yz"]],
                                  [shear["zx"], shear["yz"], values[2]]]
    return labels


def read_mptrj(
    path: str | Path,
    energy_key: str = "uncorrected_total_energy",
    forces_key: str = "force",
    stress_key: str = "stress",
    require: tuple[str, ...] = (),
    shear_order: tuple[str, str, str] | None = None,
) -> Iterator[Frame]:
    """Yield labelled frames from an MPtrj-style (or mlearn) JSON file (eV, eV/Å, eV/Å³).

    `shear_order`: for mlearn files, the shear components of `virial_stress` (e.g. ("xy",
    "zx", "yz")); default: read off the file's `Elastic` cells (`mlearn_shear_order`), so a
    test file without them should get its training file's order.
    """
    source = str(path)
    try:
        with open(source) as handle:
            data = json.load(handle)
        records = list(_records(data))
    except Exception as exc:
        raise InvalidStructureError(f"cannot parse as MPtrj JSON ({type(exc).__name__}: {exc})", source) from exc
    keys = {"energy": energy_key, "forces": forces_key, "stress": stress_key}
    if shear_order is None and any(isinstance(record, dict) and isinstance(record.get("outputs"), dict) for _, record in records):
        try:
            shear_order = mlearn_shear_order([record for _, record in records if isinstance(record, dict)])
        except (KeyError, TypeError, ValueError, IndexError, np.linalg.LinAlgError):
            pass  # malformed Elastic records are reported below, record by record
    shear_order = shear_order or VASP_SHEAR_ORDER
    for index, (name, record) in enumerate(records):
        if not isinstance(record, dict) or "structure" not in record:
            raise InvalidStructureError(f"record '{name}' has no 'structure'", source, index)
        if isinstance(record.get("outputs"), dict):  # mlearn layout: labels under "outputs"
            record = {**record, **mlearn_labels(record["outputs"], keys, shear_order)}
        for label in require:
            if record.get(keys[label]) is None:
                raise InvalidStructureError(f"record '{name}' is missing requested label '{keys[label]}'", source, index)
        frame = frame_from_structure_dict(record["structure"], source, index)
        stress = record.get(stress_key)
        if stress is not None:  # kBar, VASP sign → eV/Å³, ASE sign
            stress = -KBAR * frame.numeric(f"'{stress_key}'", stress)
        kind = record.get("config_type", record.get("group"))  # mlearn: "AIMD-NVT", "Elastic", "Surface", ...
        yield frame.with_labels(energy=record.get(energy_key), forces=record.get(forces_key), stress=stress,
                                config_type=None if kind is None else str(kind)).validate()
