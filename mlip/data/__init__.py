"""HDF5 shards and feeding them: `preprocess`, `ShardDataset`, `ShardDataModule`."""

from mlip.data.dataset import ShardDataset
from mlip.data.manifest import load_manifest
from mlip.data.preprocess import preprocess
from mlip.data.sampler import DistributedShardSampler
from mlip.data.shards import ShardReader, write_shard


def __getattr__(name: str):
    # The DataModule pulls in Lightning; import it only when asked.
    if name == "ShardDataModule":
        from mlip.data.datamodule import ShardDataModule

        return ShardDataModule
    raise AttributeError(f"module 'mlip.data' has no attribute '{name}'")


__all__ = ["DistributedShardSampler", "ShardDataModule", "ShardDataset", "ShardReader", "load_manifest",
           "preprocess", "write_shard"]
