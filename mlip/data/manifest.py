"""`manifest.json`: what a folder of shards holds and how it was made."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from ase.data import chemical_symbols

from mlip.atomic_write import atomic_path
from mlip.data.stats import StatSums

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


def write_json_atomic(path: str | Path, content: dict[str, Any]) -> None:
    """Write JSON to a temporary file and rename it into place."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(content, indent=2, sort_keys=False) + "\n")


def build_manifest(
    shards: list[dict[str, Any]], total: StatSums, cutoff: float, fingerprint: dict[str, Any], seconds: float
) -> dict[str, Any]:
    """The manifest of a finished preprocessing run. Energies in eV, forces in eV/Å."""
    from mlip import __version__

    references = total.reference_energies()
    mean, std = total.residual_energy_per_atom(references)
    return {
        "format": "mlip-manifest",
        "version": MANIFEST_VERSION,
        "cutoff": cutoff,
        "units": {"energy": "eV", "length": "Å", "forces": "eV/Å", "stress": "eV/Å³"},
        "n_structures": total.n_frames,
        "n_atoms": total.n_atoms,
        "n_edges": total.n_edges,
        "labels": {"energy": total.n_energy, "forces": total.n_force_components // 3, "stress": total.n_stress},
        "elements": [chemical_symbols[z] for z in total.elements()],
        "atomic_numbers": total.elements(),
        "element_counts": {chemical_symbols[z]: int(total.element_counts[z]) for z in total.elements()},
        "reference_energies": {chemical_symbols[z]: e for z, e in references.items()},
        "reference_energy_method": "least squares over compositions (minimum norm if degenerate)",
        "energy_per_atom_residual": {"mean": mean, "std": std},
        "energy_moments": total.energy_moments(),
        "isolated_atom_energies": {chemical_symbols[z]: e for z, e in total.isolated_atom_energies().items()},
        "force_rms": total.force_rms(),
        "mean_neighbors": total.n_edges / total.n_atoms if total.n_atoms else 0.0,
        "shards": shards,
        "produced_by": {
            "mlip_version": __version__,
            "command": " ".join(sys.argv),
            "python": platform.python_version(),
            "host": platform.node(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": round(seconds, 3),
        },
        "fingerprint": fingerprint,
    }


def load_manifest(directory: str | Path) -> dict[str, Any]:
    """Read and check the manifest of a shard folder."""
    path = Path(directory) / MANIFEST_NAME
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: '{directory}' is not a finished shard folder; run mlip-preprocess INPUT --out {directory}"
        )
    manifest = json.loads(path.read_text())
    if manifest.get("format") != "mlip-manifest":
        raise ValueError(f"{path} is not an mlip manifest")
    if int(manifest.get("version", 0)) > MANIFEST_VERSION:
        raise ValueError(
            f"{path} has manifest version {manifest['version']}, newer than this mlip supports "
            f"({MANIFEST_VERSION}); upgrade mlip"
        )
    return manifest


def describe_labels(labels: dict[str, int]) -> str:
    """A manifest's label counts in words: "energy 200 structures, forces 6400 atoms, stress 200 structures"."""
    units = {"energy": "structures", "forces": "atoms", "stress": "structures"}
    return ", ".join(f"{name} {labels.get(name, 0)} {unit}" for name, unit in units.items())
