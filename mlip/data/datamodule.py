"""`ShardDataModule`: Lightning train/validation loaders over shard folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader

from mlip.data.dataset import ShardDataset
from mlip.data.sampler import DistributedShardSampler
from mlip.graph.batch import GraphBatch


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random split of range(n) into (train, validation) index arrays."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n_val = max(1, int(round(val_fraction * n)))
    if n_val >= n:
        raise ValueError(f"{n} structures are too few to hold out {val_fraction:.0%} for validation")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


class ShardDataModule(pl.LightningDataModule):
    """Batches of `GraphBatch` from shard folders written by `mlip-preprocess`.

    Validation frames come from `val` (another shard folder) or a seeded `val_fraction` of
    `train`. Under DDP each rank draws different frames through `DistributedShardSampler`;
    create the Trainer with `use_distributed_sampler=False` so that Lightning keeps it.

    Example:
        >>> data = ShardDataModule("shards/", val_fraction=0.05, batch_size=8)
        >>> data.setup()
        >>> batch = next(iter(data.train_dataloader()))
    """

    def __init__(self, train: str | Path, val: str | Path | None = None, val_fraction: float = 0.05,
                 batch_size: int = 8, val_batch_size: int | None = None, num_workers: int = 0,
                 seed: int = 0, locality: bool = True, pin_memory: bool = False):
        super().__init__()
        self.train_dir, self.val_dir = Path(train), None if val is None else Path(val)
        self.val_fraction, self.seed, self.locality = val_fraction, seed, locality
        self.batch_size, self.val_batch_size = batch_size, val_batch_size or batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.train_set: ShardDataset | None = None

    @property
    def manifest(self) -> dict[str, Any]:
        """The training set's manifest (cutoff, elements, reference energies, force RMS, ...)."""
        return (self.train_set or ShardDataset(self.train_dir)).manifest

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        self.train_set = ShardDataset(self.train_dir)
        if self.val_dir is not None:
            self.val_set = ShardDataset(self.val_dir)
            if abs(self.val_set.cutoff - self.train_set.cutoff) > 1e-12:
                raise ValueError(f"cutoff of {self.val_dir} ({self.val_set.cutoff} Å) differs from "
                                 f"{self.train_dir} ({self.train_set.cutoff} Å); preprocess both with one --cutoff")
            self.train_indices = np.arange(len(self.train_set))
            self.val_indices = np.arange(len(self.val_set))
        else:
            self.val_set = self.train_set
            self.train_indices, self.val_indices = split_indices(len(self.train_set), self.val_fraction, self.seed)

    def _world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            return trainer.world_size, trainer.global_rank
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_world_size(), torch.distributed.get_rank()
        return 1, 0

    def _loader(self, dataset: ShardDataset, indices: np.ndarray, batch_size: int, shuffle: bool) -> DataLoader:
        replicas, rank = self._world()
        sampler = DistributedShardSampler(indices, dataset.shard_of(indices), replicas, rank,
                                          shuffle=shuffle, seed=self.seed, locality=self.locality)
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=GraphBatch.collate,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
                          pin_memory=self.pin_memory)

    def train_dataloader(self) -> DataLoader:
        self.setup()
        return self._loader(self.train_set, self.train_indices, self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        self.setup()
        return self._loader(self.val_set, self.val_indices, self.val_batch_size, shuffle=False)
