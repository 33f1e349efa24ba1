"""Content hashes: corrupt or tampered shards, model weights and checkpoints are refused, naming the file."""

from __future__ import annotations

import zipfile

import h5py
import pytest
import torch

import mlip
from mlip.checksum import ChecksumError
from mlip.data.dataset import ShardDataset
from mlip.data.preprocess import preprocess
from mlip.export import ModelFileError, load, save
from mlip.train.checkpoints import AtomicCheckpointIO, intact_resume_checkpoint


@pytest.fixture()
def shards(data_dir, tmp_path):
    preprocess([data_dir / "acac_test_MD_300K_50.xyz"], tmp_path / "shards", cutoff=4.0, workers=1, progress=False)
    return tmp_path / "shards"


def test_intact_shards_read(shards):
    assert len(ShardDataset(shards)) == 50 and ShardDataset(shards)[49].n_atoms == 15


def test_flipped_byte_in_a_shard_is_refused(shards):
    path = shards / "shard_00000.h5"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="shard_00000.h5 is corrupt.*mlip-preprocess"):
        ShardDataset(shards)[0]


def test_shard_with_shifted_pointers_is_refused(shards):
    with h5py.File(shards / "shard_00000.h5", "r+") as h5:  # consistent HDF5, wrong content
        h5["atom_ptr"][1:] = h5["atom_ptr"][1:] + 1
    with pytest.raises(ChecksumError, match="corrupt"):
        ShardDataset(shards)[0]


def test_corrupt_model_weights_are_refused(tmp_path):
    potential = mlip.build_potential("equivariant", ["H", "O"], 4.0, channels=4, lmax=1)
    path = save(potential, tmp_path / "m.mlip")
    with zipfile.ZipFile(path) as archive:
        header, weights = archive.read("mlip.json"), bytearray(archive.read("weights.pt"))
    weights[len(weights) - 100] ^= 0x01  # inside the last tensor's bytes
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mlip.json", header)
        archive.writestr("weights.pt", bytes(weights))
    with pytest.raises(ModelFileError, match="weights are corrupt"):
        load(path)


def test_resume_skips_a_corrupt_last_checkpoint(tmp_path):
    folder = tmp_path / "checkpoints"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1, "w": torch.ones(3)}, folder / "best.ckpt")
    io.save_checkpoint({"step": 2, "w": torch.ones(3)}, folder / "last.ckpt")
    assert intact_resume_checkpoint(tmp_path)[0].name == "last.ckpt"
    data = bytearray((folder / "last.ckpt").read_bytes())
    data[-10] ^= 0xFF
    (folder / "last.ckpt").write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="last.ckpt is corrupt"):
        io.load_checkpoint(folder / "last.ckpt")
    path, note = intact_resume_checkpoint(tmp_path)
    assert path.name == "best.ckpt" and "last.ckpt corrupt: skipped" in note
    assert io.load_checkpoint(path)["step"] == 1


@pytest.mark.parametrize("killed_at_write", [1, 2])
def test_a_save_killed_between_checkpoint_and_hash_leaves_an_intact_checkpoint(tmp_path, monkeypatch, killed_at_write):
    """A kill during a save, before the new checkpoint is renamed into place (write 1 of its hash file)
    or after it (write 2), leaves last.ckpt intact: the old one or the new one, never 'corrupt'."""
    import mlip.train.checkpoints as checkpoints

    folder = tmp_path / "checkpoints"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1}, folder / "last.ckpt")
    real, writes = checkpoints._write_digests, []

    def killed(recorded, digests):
        writes.append(digests)
        if len(writes) == killed_at_write:
            if killed_at_write == 1:
                real(recorded, digests)  # the hash file written, the kill before the rename
            raise KeyboardInterrupt("killed")
        real(recorded, digests)

    monkeypatch.setattr(checkpoints, "_write_digests", killed)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"step": 2}, folder / "last.ckpt")
    path, note = intact_resume_checkpoint(tmp_path)
    assert path.name == "last.ckpt" and "corrupt" not in note
    assert io.load_checkpoint(path)["step"] == (1 if killed_at_write == 1 else 2)
    assert len(writes[0]) == 2  # the first write lists the new and the current digest
