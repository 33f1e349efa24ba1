"""Split files into frame ranges that separate processes can read independently.

Extended XYZ is indexed by one fast scan of the atom-count lines (byte offset and atom count
of every frame); MD17-style npz files by their array shapes. Other formats are read as a
stream by one process (`splittable` returns False for them).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlip.io.ase_reader import frame_from_atoms
from mlip.io.errors import InvalidStructureError
from mlip.io.frame import Frame
from mlip.io.npz_reader import read_npz
from mlip.io.read import detect_format

SPLITTABLE = ("extxyz", "npz")


@dataclass(frozen=True)
class FrameRange:
    """Frames [start, stop) of one file; for extended XYZ also their byte span [begin, end)."""

    path: str
    format: str
    start: int
    stop: int
    begin: int = 0
    end: int = 0


def splittable(path: str | Path, format: str | None = None) -> bool:
    return (format or detect_format(path)) in SPLITTABLE


def index_extxyz(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Byte offset (F+1,) and atom count (F,) of every frame, from the atom-count lines only."""
    offsets, counts = [], []
    source = str(path)
    with open(source, "rb") as handle:
        position = 0
        while True:
            line = handle.readline()
            if not line:
                break
            if not line.strip():
                position += len(line)
                continue
            try:
                n_atoms = int(line)
            except ValueError:
                raise InvalidStructureError(f"expected an atom count, found {line[:40]!r}", source, len(counts)) from None
            offsets.append(position)
            counts.append(n_atoms)
            position += len(line)
            for _ in range(n_atoms + 1):
                line = handle.readline()
                if not line:
                    raise InvalidStructureError(f"file ends inside a frame of {n_atoms} atoms", source, len(counts) - 1)
                position += len(line)
        offsets.append(position)
    return np.array(offsets, dtype=np.int64), np.array(counts, dtype=np.int64)


def plan_ranges(path: str | Path, max_frames: int, max_atoms: int, format: str | None = None) -> list[FrameRange]:
    """Consecutive ranges of at most `max_frames` frames and (unless one frame is larger) `max_atoms` atoms."""
    fmt = format or detect_format(path)
    if fmt == "extxyz":
        offsets, counts = index_extxyz(path)
    elif fmt == "npz":
        try:
            with np.load(path) as archive:
                key = "coords" if "coords" in archive else "R" if "R" in archive else "positions"
                shape = archive[key].shape
        except Exception as exc:  # not an archive, pickled, or without positions: say which file
            raise InvalidStructureError(f"cannot read as MD17-style npz ({type(exc).__name__}: {exc})", str(path)) \
                from None
        if len(shape) not in (2, 3) or shape[-1] != 3:
            raise InvalidStructureError(f"positions '{key}' must have shape (frames, atoms, 3), got {shape}", str(path))
        counts = np.full(shape[0] if len(shape) == 3 else 1, shape[-2], dtype=np.int64)
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    else:
        raise ValueError(f"format {fmt} cannot be split into ranges")
    ranges, start, atoms = [], 0, 0
    for i, n in enumerate(counts):
        if i > start and (i - start >= max_frames or atoms + n > max_atoms):
            ranges.append(FrameRange(str(path), fmt, start, i, int(offsets[start]), int(offsets[i])))
            start, atoms = i, 0
        atoms += int(n)
    if len(counts) > start:
        ranges.append(FrameRange(str(path), fmt, start, len(counts), int(offsets[start]), int(offsets[-1])))
    return ranges


def read_range(frame_range: FrameRange, **options: Any) -> list[Frame]:
    """The validated frames of one range; errors name the file and the frame's index in it."""
    if frame_range.format == "npz":
        keep = {k: options[k] for k in ("energy_unit", "require") if k in options}
        return list(read_npz(frame_range.path, start=frame_range.start, stop=frame_range.stop, **keep))
    import ase.io

    with open(frame_range.path, "rb") as handle:
        handle.seek(frame_range.begin)
        raw = handle.read(frame_range.end - frame_range.begin)
    try:
        text = raw.decode()
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n")
        raise InvalidStructureError(f"not UTF-8 text (byte {exc.object[exc.start]:#x} on line {line + 1} of the "
                                    f"frame range); save the file as UTF-8", frame_range.path, frame_range.start) from None
    keep = {k: options[k] for k in ("energy_key", "forces_key", "stress_key", "virial_key", "require") if k in options}
    keep["require"] = tuple(keep.get("require", ()))
    frames = []
    reader = ase.io.iread(io.StringIO(text), index=":", format="extxyz")
    for k in range(frame_range.stop - frame_range.start):
        index = frame_range.start + k
        try:
            atoms = next(reader)
        except Exception as exc:
            raise InvalidStructureError(f"cannot parse ({type(exc).__name__}: {exc})", frame_range.path, index) from exc
        frames.append(frame_from_atoms(atoms, source=frame_range.path, index=index, **keep))
    return frames
