"""Save and load potentials as versioned, self-describing, pickle-free model files."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import torch

from mlip.atomic_write import atomic_path
from mlip.checksum import sha256_bytes
from mlip.memory import keep_freed_memory
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
    weights = {name: tensor.detach().cpu().contiguous() for name, tensor in potential.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(weights, buffer)
    header = {
        "format": FORMAT, "version": FORMAT_VERSION, "mlip_version": __version__, "units": UNITS,
        **config, "reference_energies": {str(z): e for z, e in zip(elements, reference)},
        "weights_sha256": sha256_bytes(buffer.getvalue()),
        "metadata": metadata or {},
    }
    path = Path(path)
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("mlip.json", json.dumps(header, indent=2))
        archive.writestr("weights.pt", buffer.getvalue())
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON header of a model file (checked for format and version)."""
    try:
        with zipfile.ZipFile(path) as archive:
            _check_members(path, archive)
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


# What a model file may declare, checked before anything is built or read into memory: a file
# cannot make the loader allocate more than a large model's weights (hostile files, issue 13).
MEMBERS = {"mlip.json": 1 << 20, "weights.pt": 2 << 30}  # bytes, uncompressed
MAX_EXPANSION = 1.05  # members are stored uncompressed; a compressed member must not inflate
INT_LIMITS = {"channels": 1024, "lmax": 3, "num_layers": 32, "correlation": 4,
              "num_basis": 64, "readout_hidden": 1024, "dim": 2048, "heads": 64, "avg_num_neighbors": 10_000}
LIST_LIMITS = {"radial_hidden": (8, 1, 1024), "a_lmax": (32, 0, 3), "sh_lmax": (32, 0, 3)}  # (entries, each's least, each's most)
INT_OR_LIST = ("a_lmax", "sh_lmax")  # one value for every layer or a list of them
DTYPES = ("float32", "float64")


def _check_members(path, archive: zipfile.ZipFile) -> None:
    infos = archive.infolist()
    names = sorted(info.filename for info in infos)
    if names != sorted(MEMBERS):
        raise ModelFileError(f"{path} is not an mlip model file (members {names[:5]}, expected {sorted(MEMBERS)})")
    for info in infos:
        if info.file_size > MEMBERS[info.filename]:
            raise ModelFileError(f"{path}: member {info.filename} declares {info.file_size} bytes, more than the "
                                 f"{MEMBERS[info.filename]} a model file may hold")
        if info.file_size > MAX_EXPANSION * max(info.compress_size, 1) + 1024:
            raise ModelFileError(f"{path}: member {info.filename} expands {info.file_size / max(info.compress_size, 1):.0f}"
                                 f"-fold; mlip writes members uncompressed, refusing a possible zip bomb")


def _check_header_limits(path, header: dict) -> None:
    """Hyperparameters, elements, cutoff and dtype within bounds, so that building the model is bounded."""
    if header.get("dtype") not in DTYPES:
        raise ModelFileError(f"{path}: dtype {header.get('dtype')!r} is not supported (only {', '.join(DTYPES)})")
    elements = header.get("elements")
    if not isinstance(elements, list) or not 0 < len(elements) <= 118 or \
            not all(isinstance(z, int) and 1 <= z <= 118 for z in elements):
        raise ModelFileError(f"{path}: elements must be 1 to 118 atomic numbers, got {str(elements)[:80]}")
    cutoff = header.get("cutoff")
    if not isinstance(cutoff, (int, float)) or not 0 < cutoff <= 30:
        raise ModelFileError(f"{path}: cutoff {cutoff!r} Å is outside (0, 30]")
    for key, value in {**header.get("network", {}), **header.get("potential", {})}.items():
        if key in INT_LIMITS and (not isinstance(value, (int, float)) or not 0 <= value <= INT_LIMITS[key]):
            raise ModelFileError(f"{path}: {key} = {value!r} is outside [0, {INT_LIMITS[key]}]")
        if key in INT_OR_LIST and isinstance(value, (int, float)):
            value = [value]
        if key in LIST_LIMITS:
            entries, least, most = LIST_LIMITS[key]
            if not isinstance(value, list) or len(value) > entries or \
                    not all(isinstance(v, int) and least <= v <= most for v in value):
                raise ModelFileError(f"{path}: {key} = {str(value)[:80]} must be at most {entries} integers in "
                                     f"[{least}, {most}]")


def _mlip_version() -> str:
    from mlip import __version__
    return __version__


def load(path: str | Path, dtype: torch.dtype | None = None, device: str | torch.device = "cpu") -> Potential:
    """Rebuild the potential stored in `path` (in its saved dtype unless `dtype` is given), in eval mode.

    Loading a model for simulation also keeps freed memory in the process for the next call
    (`mlip.memory.keep_freed_memory`; `MLIP_KEEP_FREED_MEMORY=0` turns it off).
    """
    keep_freed_memory()
    header = read_metadata(path)
    _check_header_limits(path, header)
    if dtype is not None and str(dtype).removeprefix("torch.") not in DTYPES:
        raise ModelFileError(f"dtype {dtype} is not supported (only {', '.join(DTYPES)})")
    with zipfile.ZipFile(path) as archive:
        raw = archive.read("weights.pt")
    if "weights_sha256" in header and sha256_bytes(raw) != header["weights_sha256"]:
        raise ModelFileError(f"{path}: the weights are corrupt (their hash differs from the one recorded when the "
                             f"file was written); use another copy or retrain")
    try:
        weights = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelFileError(f"{path}: the weights cannot be read safely ({type(exc).__name__}: {exc})") from exc
    target = dtype or getattr(torch, header["dtype"])
    try:
        potential = build_potential(
            header["architecture"], header["elements"], header["cutoff"], dtype=target,
            reference_energies={int(z): e for z, e in header["reference_energies"].items()},
            **header.get("potential", {}), **header["network"],
        )
    except (ValueError, TypeError) as exc:  # an option this mlip does not know, or a value it refuses
        raise ModelFileError(f"{path}: the stored architecture cannot be built by mlip {_mlip_version()} ({exc})") from exc
    try:
        potential.load_state_dict({k: v.to(target) if v.is_floating_point() else v for k, v in weights.items()})
    except RuntimeError as exc:
        raise ModelFileError(f"{path}: weights do not match the stored architecture ({exc})") from exc
    potential.metadata = header.get("metadata", {})
    return potential.to(device).eval()
