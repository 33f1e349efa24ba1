"""Per-element reference energies (E0s, eV) of a training set, chosen the way MACE users choose them.

    least_squares   fit E ≈ Σ_z n_z E0_z over the training frames (the manifest's; default)
    average         every element gets the training set's mean energy per atom
    isolated        the training files' isolated-atom frames (config_type=IsolatedAtom, MACE's
                    convention), which preprocessing keeps out of the shards
    PATH            a file of isolated atoms (one atom per frame, with energies): E0 = that energy
    {element: eV}   explicit values, by symbol or atomic number

The chosen E0s are subtracted before the network sees an energy; the mean residual energy per
atom under them becomes the model's shift.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
from ase.data import atomic_numbers, chemical_symbols

from mlip.data.stats import StatSums

METHODS = ("least_squares", "average", "isolated")


def resolve_reference_energies(spec: str | Mapping[Any, float], manifest: dict[str, Any]) -> tuple[dict[int, float], str]:
    """E0s (eV) for every element of `manifest` from `spec` (see the module doc), and a description of the choice."""
    elements = [int(z) for z in manifest["atomic_numbers"]]
    if isinstance(spec, Mapping):
        values, method = {_atomic_number(key): float(value) for key, value in spec.items()}, "given"
    elif spec == "least_squares":
        references = {atomic_numbers[k] if isinstance(k, str) and not k.isdigit() else int(k): float(v)
                      for k, v in manifest["reference_energies"].items()}
        return references, "least squares over the training compositions"
    elif spec == "average":
        moments = _moments(manifest, spec)
        mean = moments["sum_e_per_atom"] / max(int(moments["n_energy"]), 1)
        return {z: mean for z in elements}, "mean energy per atom of the training set, every element"
    elif spec == "isolated":
        values = {atomic_numbers[k]: float(v) for k, v in manifest.get("isolated_atom_energies", {}).items()}
        method = "isolated-atom frames (config_type IsolatedAtom) of the training files"
    elif isinstance(spec, (str, Path)) and Path(spec).is_file():
        values, method = _isolated_atoms(Path(spec)), f"isolated atoms in {spec}"
    else:
        raise ValueError(f"e0s must be one of {METHODS}, a file of isolated atoms, or {{element: eV}}; got {spec!r}"
                         + (" (no such file)" if isinstance(spec, str) and ("/" in spec or "." in spec) else ""))
    missing = [chemical_symbols[z] for z in elements if z not in values]
    if missing:
        raise ValueError(f"e0s ({method}) give no energy for {', '.join(missing)}, present in the training set")
    return {z: values[z] for z in elements}, method


def underdetermined_note(manifest: dict[str, Any]) -> str | None:
    """One line when the training compositions cannot fix every element's least-squares E0 (e.g. the
    conformations of one molecule: one composition, several elements), else None.

    Then the least-squares E0s are the minimum-norm choice (aspirin alone gives H −875 eV): exact for
    the training composition, meaningless per element, so energies of other compositions are off by
    whatever the split between elements got wrong. The rank is that of the per-atom composition
    moments Σ (n/N)(n/N)ᵀ, the same as the composition matrix's."""
    moments = manifest.get("energy_moments")
    if not moments or not moments.get("n_energy"):
        return None
    composition = np.asarray(moments["xx_per_atom_sq"], dtype=float)
    elements = composition.shape[0]
    rank = int(np.linalg.matrix_rank(composition, tol=1e-10 * max(float(np.abs(composition).max()), 1e-300)))
    if rank >= elements:
        return None
    return (f"the training set's compositions determine only {rank} of the {elements} per-element E0s, so the "
            f"least-squares E0s hold for these compositions only; to predict other compositions' energies give "
            f"--model.e0s isolated, a file of isolated atoms or {{element: eV}} (average at least keeps them alike)")


def residual_shift(manifest: dict[str, Any], references: Mapping[int, float], spec: Any) -> float:
    """Mean (E − Σ n_z E0_z) / N over the training frames with energies, eV/atom."""
    if spec == "least_squares":
        return float(manifest["energy_per_atom_residual"]["mean"])
    mean, _ = StatSums.from_energy_moments(_moments(manifest, spec)).residual_energy_per_atom(dict(references))
    return mean


def _moments(manifest: dict[str, Any], spec: Any) -> dict[str, Any]:
    if "energy_moments" not in manifest:
        raise ValueError(f"e0s {spec!r} needs the energy sums of newer shards; run mlip-preprocess again on the "
                         f"training data (or use e0s least_squares)")
    return manifest["energy_moments"]


def _atomic_number(key: Any) -> int:
    if isinstance(key, str) and not key.isdigit():
        if key not in atomic_numbers:
            raise ValueError(f"e0s: '{key}' is not an element symbol")
        return atomic_numbers[key]
    return int(key)


def _isolated_atoms(path: Path) -> dict[int, float]:
    from mlip.io import read

    values: dict[int, float] = {}
    for index, frame in enumerate(read(path, require=("energy",))):
        if len(frame.numbers) != 1:
            raise ValueError(f"{path}, frame {index}: an isolated-atoms file holds one atom per frame, "
                             f"this one has {len(frame.numbers)}")
        values[int(frame.numbers[0])] = float(frame.energy)
    return values
