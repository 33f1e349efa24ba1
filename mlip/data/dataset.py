"""`ShardDataset`: a map-style dataset over a folder of shards, opened lazily in each process."""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from mlip.checksum import verify_file
from mlip.data.manifest import load_manifest
from mlip.data.shards import ShardReader
from mlip.graph.atomic_graph import AtomicGraph


class ShardDataset:
    """Frames of all shards listed in `DIR/manifest.json`, indexed 0..len-1 in shard order.

    Shards are loaded on first access inside each process (DataLoader workers and DDP ranks
    load their own), at most `max_cached_shards` at a time (least recently used dropped), so
    the object is cheap to pickle and to send to workers.

    Example:
        >>> data = ShardDataset("shards/")
        >>> graph = data[0]            # AtomicGraph with neighbour list and labels
        >>> data.manifest["cutoff"]
    """

    def __init__(self, directory: str | Path, max_cached_shards: int = 4):
        self.directory = Path(directory)
        self.manifest: dict[str, Any] = load_manifest(self.directory)
        self.files = [self.directory / s["file"] for s in self.manifest["shards"]]
        counts = np.array([s["n_frames"] for s in self.manifest["shards"]], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        self.max_cached_shards = max(1, max_cached_shards)
        self._readers: OrderedDict[int, ShardReader] = OrderedDict()
        self._pid = os.getpid()
        self._verified: set[int] = set()  # shards whose content hash matched the manifest

    @property
    def cutoff(self) -> float:
        return float(self.manifest["cutoff"])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """(shard number, index within shard) of a global frame index."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"frame {index} out of range for {len(self)} frames")
        index = int(index) % len(self)
        shard = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return shard, index - int(self.offsets[shard])

    def shard_of(self, indices: np.ndarray) -> np.ndarray:
        """Shard number of each global index, vectorised."""
        return np.searchsorted(self.offsets, np.asarray(indices), side="right") - 1

    def reader(self, shard: int) -> ShardReader:
        if os.getpid() != self._pid:  # forked into a worker: load its own copies
            self._readers, self._pid = OrderedDict(), os.getpid()
        if shard in self._readers:
            self._readers.move_to_end(shard)
        else:
            if shard not in self._verified:  # once per shard and process: the whole file is read anyway
                expected = self.manifest["shards"][shard].get("sha256")
                if expected:
                    verify_file(self.files[shard], expected, f"rerun mlip-preprocess with --overwrite to rebuild "
                                                             f"{self.directory}")
                self._verified.add(shard)
            self._readers[shard] = ShardReader(self.files[shard])
            while len(self._readers) > self.max_cached_shards:
                self._readers.popitem(last=False)
        return self._readers[shard]

    def __getitem__(self, index: int) -> AtomicGraph:
        shard, local = self.locate(index)
        return self.reader(shard)[local]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_readers"] = OrderedDict()
        return state
