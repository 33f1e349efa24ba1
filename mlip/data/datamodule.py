"""`ShardDataModule`: Lightning train/validation loaders over shard folders."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader

from mlip.data.dataset import ShardDataset
from mlip.data.preprocess import DEFAULT_CUTOFF
from mlip.data.sampler import DistributedShardSampler
from mlip.graph.batch import GraphBatch
from mlip.io.read_options import ReadOptions



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

    `train` and `val` are shard folders, or raw structure files/folders, which are
    preprocessed once (on rank 0, in `prepare_data`) into `cache_dir` with `cutoff` Å
    (default 5 Å). Shard folders bring their own cutoff: a `cutoff` given as well must equal it.
    Validation frames come from `val` or a seeded `val_fraction` of `train`. Under DDP each rank draws different frames through `DistributedShardSampler`;
    create the Trainer with `use_distributed_sampler=False` so that Lightning keeps it.

    Args:
        train: training data: a shard folder from mlip-preprocess, or structure files/folders (any
            format mlip reads), preprocessed into RUN_DIR/data on first use.
        val: validation data, as train; None holds out val_fraction of train instead.
        val_fraction: fraction of train held out for validation (seeded) when val is None.
        batch_size: structures per training batch.
        val_batch_size: structures per validation batch (default: batch_size).
        num_workers: data-loading processes (0: in the training process).
        seed: seed of the validation split and of the shuffling.
        locality: draw batches shard by shard (fewer file switches; still random order).
        pin_memory: pin host memory for faster copies to a GPU.
        cutoff: neighbour cutoff radius (Å) for raw inputs (default 5 Å); shard folders carry their
            own, and a different value here is an error.
        cache_dir: where raw inputs are preprocessed (mlip-train sets RUN_DIR/data).
        read_options: reader options for raw inputs, e.g. {"energy_key": "REF_energy",
            "forces_key": "REF_forces", "stress_key": "REF_stress", "virial_key": "virial"}.
        energy_key: name of the energy label of raw inputs (MACE's files: REF_energy), as read_options'
            energy_key; given in both, the two must agree.
        forces_key: name of the forces label (MACE's files: REF_forces), as energy_key.
        stress_key: name of the stress label (MACE's files: REF_stress), as energy_key.

    Example:
        >>> data = ShardDataModule("shards/", val_fraction=0.05, batch_size=8)
        >>> data.setup()
        >>> batch = next(iter(data.train_dataloader()))
    """

    def __init__(self, train: str | list[str], val: str | list[str] | None = None, val_fraction: float = 0.05,
                 batch_size: int = 8, val_batch_size: int | None = None, num_workers: int = 0,
                 seed: int = 0, locality: bool = True, pin_memory: bool = False, cutoff: float | None = None,
                 cache_dir: str = "mlip_cache", read_options: dict | None = None, energy_key: str | None = None,
                 forces_key: str | None = None, stress_key: str | None = None):
        super().__init__()
        self.cutoff = DEFAULT_CUTOFF if cutoff is None else float(cutoff)
        self.cutoff_given = cutoff is not None
        label_keys = {"energy_key": energy_key, "forces_key": forces_key, "stress_key": stress_key}
        self.cache_dir, self.read_options = Path(cache_dir), _with_label_keys(read_options, label_keys)
        self.train_inputs, self.val_inputs = train, val
        self.train_dir = self._shard_dir(train, "train")
        self.val_dir = None if val is None else self._shard_dir(val, "val")
        self.val_fraction, self.seed, self.locality = val_fraction, seed, locality
        self.batch_size, self.val_batch_size = batch_size, val_batch_size or batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.train_set: ShardDataset | None = None

    def _shard_dir(self, inputs: str | list[str], name: str) -> Path:
        """`inputs` itself if it is a shard folder, else where its preprocessed shards go."""
        if isinstance(inputs, (str, Path)) and (Path(inputs) / "manifest.json").exists():
            return Path(inputs)
        return self.cache_dir / name

    def prepare_data(self) -> None:
        """Preprocess raw inputs (rank 0 only); reruns keep finished shards."""
        from mlip.data.preprocess import preprocess

        for inputs, directory in ((self.train_inputs, self.train_dir), (self.val_inputs, self.val_dir)):
            if inputs is None or directory is None or Path(directory) == Path(str(inputs)):
                continue
            files = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
            preprocess(files, directory, cutoff=self.cutoff, read_options=self.read_options,
                       progress=sys.stderr.isatty())  # bars on a terminal only

    @property
    def manifest(self) -> dict[str, Any]:
        """The training set's manifest (cutoff, elements, reference energies, force RMS, ...)."""
        return (self.train_set or ShardDataset(self.train_dir)).manifest

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        if not (self.train_dir / "manifest.json").exists():
            self.prepare_data()
        self.train_set = ShardDataset(self.train_dir)
        if self.cutoff_given and abs(self.train_set.cutoff - self.cutoff) > 1e-9:
            raise ValueError(f"data.cutoff is {self.cutoff} Å but the shards in {self.train_dir} were built with "
                             f"{self.train_set.cutoff} Å; drop data.cutoff or preprocess again with --cutoff {self.cutoff}")
        self.cutoff = self.train_set.cutoff
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

    def _loader(self, dataset: ShardDataset, indices: np.ndarray, batch_size: int, shuffle: bool,
                whole: bool = False) -> DataLoader:
        replicas, rank = (1, 0) if whole else self._world()
        sampler = DistributedShardSampler(indices, dataset.shard_of(indices), replicas, rank,
                                          shuffle=shuffle, seed=self.seed, locality=self.locality,
                                          window=dataset.max_cached_shards)
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=GraphBatch.collate,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
                          pin_memory=self.pin_memory)

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """A `GraphBatch` moved as a whole (Lightning's generic walk through its fields cost ~3 ms a training
        step), and not at all when it already is on `device`."""
        if isinstance(batch, GraphBatch):
            return batch if batch.positions.device == device else batch.to(device)
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def train_dataloader(self) -> DataLoader:
        self.setup()
        return self._loader(self.train_set, self.train_indices, self.batch_size, shuffle=True)

    def val_dataloader(self, whole: bool = False) -> DataLoader:
        """Validation batches; this rank's share under DDP unless `whole` (e.g. for final plots)."""
        self.setup()
        return self._loader(self.val_set, self.val_indices, self.val_batch_size, shuffle=False, whole=whole)


def _with_label_keys(read_options: "ReadOptions | dict | None", label_keys: dict[str, str | None]) -> ReadOptions:
    """read_options with the label names given as their own options; the same name given twice, differently,
    is refused (a ValueError naming both)."""
    options = ReadOptions.of(read_options).as_kwargs()
    given = dict(read_options.as_kwargs() if isinstance(read_options, ReadOptions) else read_options or {})
    for name, value in label_keys.items():
        if value is None:
            continue
        if name in given and given[name] != value:
            raise ValueError(f"{name} given twice: '{value}' and read_options {{'{name}': '{given[name]}'}}; "
                             f"give it once")
        options[name] = value
    return ReadOptions.of(options)
