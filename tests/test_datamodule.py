"""Dataset, distributed sampling and the Lightning DataModule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlip.data import DistributedShardSampler, ShardDataModule, ShardDataset, preprocess


@pytest.fixture(scope="module")
def shards(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards")
    preprocess([data_dir / "rmd17_aspirin_train200.npz"], out, cutoff=5.0, shard_size=32, workers=1, progress=False)
    return out


@pytest.mark.parametrize("locality", [True, False])
def test_ranks_get_disjoint_data_covering_everything(locality):
    indices = np.arange(100, 203)  # 103 frames: not a multiple of the world size
    shard_of = indices // 16
    world = 4
    streams = []
    for rank in range(world):
        sampler = DistributedShardSampler(indices, shard_of, world, rank, seed=3, locality=locality)
        sampler.set_epoch(2)
        streams.append(list(sampler))
    assert all(len(s) == len(streams[0]) == 26 for s in streams)
    union = set().union(*streams)
    assert union == set(indices.tolist())
    assert sum(len(s) for s in streams) - len(union) == 1  # one padding repeat, as DistributedSampler
    for a in range(world):
        for b in range(a + 1, world):
            assert len(set(streams[a]) & set(streams[b])) <= 1


def test_epochs_reshuffle_and_are_reproducible():
    indices, shard_of = np.arange(64), np.arange(64) // 8
    sampler = DistributedShardSampler(indices, shard_of, seed=0)
    first = list(sampler)
    assert list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first and sorted(sampler) == sorted(first)


def test_locality_mixes_a_window_of_shards_and_holds_no_more():
    """Shards are consecutive input frames (often one molecule after another): each stretch of the
    stream must mix `window` shards, and a stretch never needs more than `window` shards at once."""
    indices, shard_of = np.arange(64), np.arange(64) // 8
    order = list(DistributedShardSampler(indices, shard_of, seed=5, locality=True, window=4))
    shard_sequence = np.array([i // 8 for i in order])
    for stretch in (shard_sequence[:32], shard_sequence[32:]):  # two windows of four shards
        assert len(set(stretch.tolist())) == 4
        assert len(set(stretch[:8].tolist())) >= 3  # mixed from the first batch on, not one shard after another
    one_at_a_time = np.array([i // 8 for i in DistributedShardSampler(indices, shard_of, seed=5, window=1)])
    assert sum(a != b for a, b in zip(one_at_a_time, one_at_a_time[1:])) == 7


def test_dataset_locates_frames_across_shards(shards):
    data = ShardDataset(shards)
    assert len(data) == 200 and data.cutoff == 5.0
    assert data.locate(0) == (0, 0) and data.locate(33) == (1, 1) and data.locate(199) == (6, 7)
    with pytest.raises(IndexError):
        data[200]


def test_datamodule_batches(shards):
    module = ShardDataModule(shards, val_fraction=0.1, batch_size=16, seed=1)
    module.setup()
    assert len(module.train_indices) == 180 and len(module.val_indices) == 20
    assert not set(module.train_indices) & set(module.val_indices)
    batches = list(module.train_dataloader())
    assert len(batches) == 12 and sum(b.num_graphs for b in batches) == 180
    batch = batches[0]
    assert batch.positions.shape == (16 * 21, 3) and batch.energy.shape == (16,)
    assert torch.all(batch.edge_vectors().norm(dim=1) < 5.0)
    val = list(module.val_dataloader())
    assert sum(b.num_graphs for b in val) == 20
    assert module.manifest["elements"] == ["H", "C", "O"]
    # batches move to the training device as a whole, and not at all where they already are
    assert module.transfer_batch_to_device(batch, torch.device("cpu"), 0) is batch
    moved = module.transfer_batch_to_device(batch, "meta", 0)
    assert moved.positions.device.type == "meta" and moved.receivers.device.type == "meta"


def test_worker_processes_load_their_own_shards(shards):
    module = ShardDataModule(shards, val_fraction=0.1, batch_size=20, num_workers=2)
    energies = torch.cat([b.energy for b in module.train_dataloader()])
    module_serial = ShardDataModule(shards, val_fraction=0.1, batch_size=20, num_workers=0)
    serial = torch.cat([b.energy for b in module_serial.train_dataloader()])
    assert torch.equal(energies, serial)


def test_datamodule_under_two_ranks_splits_training_data(shards, monkeypatch):
    seen = []
    for rank in range(2):
        module = ShardDataModule(shards, val_fraction=0.1, batch_size=10)
        monkeypatch.setattr(module, "_world", lambda rank=rank: (2, rank))
        seen.append({float(e) for b in module.train_dataloader() for e in b.energy})
    assert len(seen[0]) == len(seen[1]) == 90 and not seen[0] & seen[1]


def test_label_keys_of_mace_style_files_are_options_of_their_own(tmp_path):
    """`--data.energy_key REF_energy` (and forces, stress) reads MACE-style files as read_options does;
    the same key given twice with different names is refused."""
    import ase.io
    from ase.build import bulk

    frames = []
    for k in range(4):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.05, seed=k)
        atoms.info["REF_energy"] = -3.5 * len(atoms) + 0.01 * k
        atoms.arrays["REF_forces"] = np.full((len(atoms), 3), 0.1 * k)
        frames.append(atoms)
    path = tmp_path / "mace_style.xyz"
    ase.io.write(path, frames, format="extxyz")
    data = ShardDataModule(str(path), val_fraction=0.25, batch_size=4, cache_dir=str(tmp_path / "cache"),
                           energy_key="REF_energy", forces_key="REF_forces")
    assert (data.read_options.energy_key, data.read_options.forces_key) == ("REF_energy", "REF_forces")
    data.prepare_data()
    data.setup()
    energies = torch.cat([batch.energy for batch in data.train_dataloader()] +
                         [batch.energy for batch in data.val_dataloader()])
    assert sorted(energies.tolist()) == pytest.approx([-14.0 + 0.01 * k for k in range(4)])
    with pytest.raises(ValueError, match="energy_key given twice"):
        ShardDataModule(str(path), energy_key="REF_energy", read_options={"energy_key": "E"})
    same = ShardDataModule(str(path), energy_key="REF_energy", read_options={"energy_key": "REF_energy"})
    assert same.read_options.energy_key == "REF_energy"
