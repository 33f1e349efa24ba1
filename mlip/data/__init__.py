"""HDF5 shards and feeding them: `preprocess`, `ShardDataset`, `ShardDataModule`.

Preprocessing does not import torch; the sampler and DataModule (torch, Lightning) are
imported when first asked for.
"""

from mlip.data.dataset import ShardDataset
from mlip.data.manifest import load_manifest
from mlip.data.preprocess import preprocess
from mlip.data.shards import ShardReader, write_shard

_LAZY = {"ShardDataModule": "mlip.data.datamodule", "DistributedShardSampler": "mlip.data.sampler"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mlip.data' has no attribute '{name}'")


__all__ = ["DistributedShardSampler", "ShardDataModule", "ShardDataset", "ShardReader", "load_manifest",
           "preprocess", "write_shard"]
