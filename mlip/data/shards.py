"""HDF5 shards: a few thousand structures with their neighbour graphs, written atomically.

Layout of one shard (all arrays concatenated over its F frames, N atoms, E edges):
    atom_ptr (F+1,) int64, edge_ptr (F+1,) int64       offsets of each frame's atoms / edges
    numbers (N,) uint8, positions (N, 3) f8 Å, forces (N, 3) f8 eV/Å
    cell (F, 3, 3) f8 Å, pbc (F, 3) bool, energy (F,) f8 eV, stress (F, 3, 3) f8 eV/Å³, weight (F,)
    receivers, senders (E,) int32, indices local to their frame; shifts (E, 3) smallest int type
    source_file (F,) int32 into attribute `sources`; source_index (F,) int64
    stats/*  additive statistics (see `StatSums`)
Missing labels are NaN. Attributes: format, version, cutoff, n_frames, n_atoms, n_edges.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

from mlip.atomic_write import write_bytes_atomic
from mlip.data.stats import StatSums
from mlip.graph.atomic_graph import AtomicGraph, build_graph
from mlip.io.frame import Frame

SHARD_FORMAT = "mlip-shard"
SHARD_VERSION = 1
COMPRESSION = {"compression": "gzip", "compression_opts": 1, "shuffle": True}


def shard_name(index: int) -> str:
    return f"shard_{index:05d}.h5"


def _smallest_int(values: np.ndarray) -> np.dtype:
    largest = int(np.abs(values).max()) if values.size else 0
    for dtype in (np.int8, np.int16, np.int32):
        if largest <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def _join(parts: list[np.ndarray], row_shape: tuple[int, ...]) -> np.ndarray:
    """Concatenate along the first axis; an empty (0, *row_shape) array when there are no parts (a
    shard may hold no frames, e.g. when its file held only isolated atoms)."""
    return np.concatenate(parts) if parts else np.zeros((0, *row_shape))


def _put(h5: h5py.File, name: str, data: np.ndarray, rows: int) -> None:
    data = np.ascontiguousarray(data)
    if data.size == 0:
        h5.create_dataset(name, data=data)
        return
    chunk = (min(len(data), rows),) + data.shape[1:]
    h5.create_dataset(name, data=data, chunks=chunk, **COMPRESSION)


def write_shard(frames: Sequence[Frame], path: str | Path, cutoff: float, min_distance: float | None = 0.1) -> StatSums:
    """Build graphs for `frames` and write them to `path` atomically (temp file + rename).

    Returns the shard's additive statistics. Raises `InvalidStructureError` for a bad frame,
    in which case nothing is left at `path`.
    """
    graphs = [build_graph(f, cutoff, min_distance) for f in frames]
    # built in memory and written with plain file I/O: HDF5's own writer crashes the process
    # (SIGSEGV in h5py's cleanup) when the disk fills up; this way a full disk is an OSError
    buffer = io.BytesIO()
    stats = _write(graphs, frames, buffer, cutoff)
    write_bytes_atomic(path, buffer.getbuffer())
    return stats


def _write(graphs: list[AtomicGraph], frames: Sequence[Frame], path: Path | io.BytesIO, cutoff: float) -> StatSums:
    atom_ptr = np.concatenate([[0], np.cumsum([g.n_atoms for g in graphs])]).astype(np.int64)
    edge_ptr = np.concatenate([[0], np.cumsum([g.n_edges for g in graphs])]).astype(np.int64)
    numbers = _join([g.numbers for g in graphs], ()).astype(np.uint8)
    forces = _join([g.forces for g in graphs], (3,))
    energy = np.array([g.energy for g in graphs], dtype=np.float64)
    stress = _join([g.stress[None] for g in graphs], (3, 3))
    shifts = _join([g.shifts for g in graphs], (3,))
    sources = sorted({f.source or "" for f in frames})
    source_id = {s: i for i, s in enumerate(sources)}
    stats = StatSums.from_arrays(numbers.astype(np.int64), atom_ptr, energy, forces, stress, int(edge_ptr[-1]))
    with h5py.File(path, "w") as h5:
        h5.attrs.update(format=SHARD_FORMAT, version=SHARD_VERSION, cutoff=cutoff, n_frames=len(graphs),
                        n_atoms=int(atom_ptr[-1]), n_edges=int(edge_ptr[-1]), sources=json.dumps(sources))
        h5.create_dataset("atom_ptr", data=atom_ptr)
        h5.create_dataset("edge_ptr", data=edge_ptr)
        _put(h5, "numbers", numbers, 1 << 16)
        _put(h5, "positions", _join([g.positions for g in graphs], (3,)), 1 << 14)
        _put(h5, "forces", forces, 1 << 14)
        _put(h5, "cell", _join([g.cell[None] for g in graphs], (3, 3)), 1 << 12)
        _put(h5, "pbc", _join([g.pbc[None] for g in graphs], (3,)).astype(bool), 1 << 12)
        _put(h5, "energy", energy, 1 << 14)
        _put(h5, "stress", stress, 1 << 12)
        _put(h5, "weight", np.array([g.weight for g in graphs], dtype=np.float64), 1 << 14)
        _put(h5, "receivers", _join([g.receivers for g in graphs], ()).astype(np.int32), 1 << 16)
        _put(h5, "senders", _join([g.senders for g in graphs], ()).astype(np.int32), 1 << 16)
        _put(h5, "shifts", shifts.astype(_smallest_int(shifts)), 1 << 16)
        _put(h5, "source_file", np.array([source_id[f.source or ""] for f in frames], dtype=np.int32), 1 << 14)
        _put(h5, "source_index", np.array([-1 if f.index is None else f.index for f in frames], dtype=np.int64), 1 << 14)
        group = h5.create_group("stats")
        for name, value in stats.to_dict().items():  # 119 x 119 sums, mostly zeros: compress
            group.create_dataset(name, data=value, **(COMPRESSION if value.ndim else {}))
    return stats


def read_shard_stats(path: str | Path) -> StatSums:
    """The statistics stored in a finished shard."""
    with h5py.File(path, "r") as h5:
        return StatSums.from_dict({name: h5["stats"][name][()] for name in h5["stats"]})


def is_complete_shard(path: str | Path) -> bool:
    """True for a readable shard of this format (files are only ever renamed into place whole)."""
    try:
        with h5py.File(path, "r") as h5:
            return h5.attrs.get("format") == SHARD_FORMAT and "stats" in h5 and int(h5.attrs["version"]) <= SHARD_VERSION
    except (OSError, KeyError):
        return False


class ShardReader:
    """Random access to the frames of one shard, decompressed into memory on opening.

    A shard is bounded (``--shard-size`` frames, ``--shard-atoms`` atoms), so holding one in
    memory costs at most ~100 MB, and reading a frame is then plain array slicing (µs),
    not one HDF5 call per field (~0.5 ms each). `ShardDataset` keeps a few readers per process.
    """

    FIELDS = ("numbers", "positions", "forces", "cell", "pbc", "energy", "stress", "weight",
              "receivers", "senders", "shifts")

    def __init__(self, path: str | Path):
        self.path = str(path)
        with h5py.File(self.path, "r") as h5:
            version = int(h5.attrs.get("version", -1))
            if h5.attrs.get("format") != SHARD_FORMAT or version > SHARD_VERSION:
                raise ValueError(f"{self.path} is not an mlip shard of version <= {SHARD_VERSION}")
            self.cutoff = float(h5.attrs["cutoff"])
            self.atom_ptr = h5["atom_ptr"][()]
            self.edge_ptr = h5["edge_ptr"][()]
            self.data = {name: h5[name][()] for name in self.FIELDS}
        self.data["numbers"] = self.data["numbers"].astype(np.int64)

    def __len__(self) -> int:
        return len(self.atom_ptr) - 1

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.data.values())

    def __getitem__(self, i: int) -> AtomicGraph:
        a, e, d = slice(*self.atom_ptr[i:i + 2]), slice(*self.edge_ptr[i:i + 2]), self.data
        return AtomicGraph(
            numbers=d["numbers"][a],
            positions=d["positions"][a],
            forces=d["forces"][a],
            cell=d["cell"][i],
            pbc=d["pbc"][i],
            energy=float(d["energy"][i]),
            stress=d["stress"][i],
            weight=float(d["weight"][i]),
            receivers=d["receivers"][e].astype(np.int64),
            senders=d["senders"][e].astype(np.int64),
            shifts=d["shifts"][e].astype(np.int64),
        )
