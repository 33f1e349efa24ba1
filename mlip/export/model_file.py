"""Save and load potentials as versioned, self-describing, pickle-free model files."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import torch

from mlip.atomic_write import atomic_path
from mlip.models.build import build_potential
from mlip.models.potential import Potential

FORMAT = "mlip-model"
FORMAT_VERSION = 2
# the oldest version whose weights each architecture still reads: the equivariant layers were regrouped in 2
OLDEST_READABLE = {"equivariant": 2}
UNITS = {"energy": "eV", "length": "Å", "forces": "eV/Å", "stress": "eV/Å³"}


class ModelFileError(ValueError):
    """A model file that cannot be loaded: not an mlip model, damaged, or from a newer format."""


def save(potential: Potential, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write `potential` to `path` atomically (temporary file + rename). Returns the path.

    `metadata` (JSON-able) is stored beside the configuration, e.g. training data and metrics.
    """
    from mlip import __version__

    config = getattr(potential, "config", None)
    if config is None:
        raise ModelFileError("this Potential was not made by mlip.build_potential, so it cannot be rebuilt from a file")
    elements = config["elements"]
    reference = potential.reference.detach().cpu().tolist()
    header = {
        "format": FORMAT, "version": FORMAT_VERSION, "mlip_version": __version__, "units": UNITS,
        **config, "reference_energies": {str(z): e for z, e in zip(elements, reference)},
        "metadata": metadata or {},
    }
    weights = {name: tensor.detach().cpu().contiguous() for name, tensor in potential.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(weights, buffer)
    path = Path(path)
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("mlip.json", json.dumps(header, indent=2))
        archive.writestr("weights.pt", buffer.getvalue())
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON header of a model file (checked for format and version)."""
    try:
        with zipfile.ZipFile(path) as archive:
            header = json.loads(archive.read("mlip.json"))
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path} is not an mlip model file ({type(exc).__name__}: {exc})") from exc
    if header.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not an mlip model file (format {header.get('format')!r})")
    if int(header.get("version", -1)) > FORMAT_VERSION:
        raise ModelFileError(f"{path} has model format version {header['version']}, newer than this mlip "
                             f"({FORMAT_VERSION}) can read; upgrade mlip")
    oldest = OLDEST_READABLE.get(header.get("architecture"), 1)
    if int(header.get("version", -1)) < oldest:
        raise ModelFileError(f"{path} has model format version {header.get('version')}: its "
                             f"{header.get('architecture')} layers predate format {oldest} and cannot be read by "
                             f"mlip {_mlip_version()}; retrain the model (or load it with the mlip that wrote it)")
    return header


def _mlip_version() -> str:
    from mlip import __version__
    return __version__


def load(path: str | Path, dtype: torch.dtype | None = None, device: str | torch.device = "cpu") -> Potential:
    """Rebuild the potential stored in `path` (in its saved dtype unless `dtype` is given), in eval mode."""
    header = read_metadata(path)
    with zipfile.ZipFile(path) as archive:
        raw = archive.read("weights.pt")
    try:
        weights = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelFileError(f"{path}: the weights cannot be read safely ({type(exc).__name__}: {exc})") from exc
    target = dtype or getattr(torch, header["dtype"])
    potential = build_potential(
        header["architecture"], header["elements"], header["cutoff"], dtype=target,
        reference_energies={int(z): e for z, e in header["reference_energies"].items()},
        **header.get("potential", {}), **header["network"],
    )
    try:
        potential.load_state_dict({k: v.to(target) if v.is_floating_point() else v for k, v in weights.items()})
    except RuntimeError as exc:
        raise ModelFileError(f"{path}: weights do not match the stored architecture ({exc})") from exc
    potential.metadata = header.get("metadata", {})
    return potential.to(device).eval()
