"""Model files round-trip exactly, load without unpickling code, and refuse bad or newer files."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
import torch

import mlip.export
import mlip.io
from mlip.graph import GraphBatch
from mlip.models import build_potential


@pytest.fixture(scope="module")
def potential():
    torch.manual_seed(0)
    return build_potential("equivariant", ["H", "C", "O"], 5.0, channels=8, lmax=1, radial="spline",
                           reference_energies={"H": -13.6, "C": -1029.0, "O": -2041.0}, scale=0.5, shift=0.1)


def test_round_trip_gives_identical_predictions(potential, data_dir, tmp_path):
    path = mlip.export.save(potential, tmp_path / "model.mlip", metadata={"trained_on": "aspirin"})
    loaded = mlip.export.load(path)
    batch = GraphBatch.from_frames(mlip.io.read(data_dir / "rmd17_aspirin_train200.npz")[:3], 5.0)
    a, b = potential.eval()(batch), loaded(batch)
    assert torch.equal(a["energy"], b["energy"]) and torch.equal(a["forces"], b["forces"])
    header = mlip.export.read_metadata(path)
    assert header["elements"] == [1, 6, 8] and header["cutoff"] == 5.0 and header["units"]["energy"] == "eV"
    assert header["reference_energies"]["6"] == -1029.0 and loaded.metadata == {"trained_on": "aspirin"}
    assert not list(tmp_path.glob("*.tmp.*"))


def test_per_layer_neighbour_sum_degree_round_trips(data_dir, tmp_path):
    torch.manual_seed(0)
    potential = build_potential("equivariant", ["H", "C", "O"], 5.0, channels=4, lmax=1, sh_lmax=3, a_lmax=[1, 3],
                                radial="mlp", radial_hidden=[8]).eval()
    assert [len(block.conv.paths_per_l) for block in potential.network.blocks] == [2, 4]  # l3 ≤ 1, then ≤ 3
    loaded = mlip.export.load(mlip.export.save(potential, tmp_path / "model.mlip"))
    batch = GraphBatch.from_frames(mlip.io.read(data_dir / "rmd17_aspirin_train200.npz")[:2], 5.0)
    assert torch.equal(potential(batch)["forces"], loaded(batch)["forces"])


def test_load_in_float64(potential, tmp_path):
    loaded = mlip.export.load(mlip.export.save(potential, tmp_path / "m.mlip"), dtype=torch.float64)
    assert loaded.reference.dtype == torch.float64


def _rewrite(path, header=None, weights=None):
    with zipfile.ZipFile(path) as archive:
        old_header, old_weights = json.loads(archive.read("mlip.json")), archive.read("weights.pt")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mlip.json", json.dumps(header(old_header) if header else old_header))
        archive.writestr("weights.pt", weights if weights is not None else old_weights)


def test_newer_format_is_refused(potential, tmp_path):
    path = mlip.export.save(potential, tmp_path / "m.mlip")
    _rewrite(path, header=lambda h: {**h, "version": 99})
    with pytest.raises(mlip.export.ModelFileError, match="version 99, newer than this mlip"):
        mlip.export.load(path)


def test_equivariant_model_from_before_the_layer_regrouping_is_refused(potential, tmp_path):
    path = mlip.export.save(potential, tmp_path / "m.mlip")
    _rewrite(path, header=lambda h: {**h, "architecture": "equivariant", "version": 1})
    with pytest.raises(mlip.export.ModelFileError, match="version 1: its equivariant layers predate format 2.*retrain"):
        mlip.export.load(path)


def test_not_a_model_file_is_refused(tmp_path):
    path = tmp_path / "junk.mlip"
    path.write_bytes(b"not a zip")
    with pytest.raises(mlip.export.ModelFileError, match="not an mlip model file"):
        mlip.export.load(path)


class Payload:
    """An object whose unpickling would run code."""

    def __reduce__(self):
        return (print, ("unpickled!",))


def test_pickled_code_in_weights_is_never_run(potential, tmp_path, capsys):
    path = mlip.export.save(potential, tmp_path / "m.mlip")
    buffer = io.BytesIO()
    torch.save({"evil": Payload()}, buffer)
    _rewrite(path, weights=buffer.getvalue())
    with pytest.raises(mlip.export.ModelFileError, match="weights are corrupt"):  # the hash catches it first
        mlip.export.load(path)
    from mlip.checksum import sha256_bytes

    _rewrite(path, header=lambda h: {**h, "weights_sha256": sha256_bytes(buffer.getvalue())})  # a forged hash
    with pytest.raises(mlip.export.ModelFileError, match="cannot be read safely"):
        mlip.export.load(path)
    assert "unpickled!" not in capsys.readouterr().out


@pytest.mark.parametrize("change, message", [
    (lambda h: {**h, "network": {**h["network"], "num_layers": 100000}}, "num_layers = 100000 is outside"),
    (lambda h: {**h, "network": {**h["network"], "channels": 10**9}}, "channels = 1000000000 is outside"),
    (lambda h: {**h, "dtype": "float16"}, "dtype 'float16' is not supported"),
    (lambda h: {**h, "elements": [1, 500]}, "elements must be 1 to 118"),
    (lambda h: {**h, "cutoff": 1e6}, "cutoff 1000000.0 Å is outside"),
    (lambda h: {**h, "network": {**h["network"], "a_lmax": [1, 50]}}, r"a_lmax = \[1, 50\] must be at most 32 integers"),
    (lambda h: {**h, "network": {**h["network"], "a_lmax": 50}}, r"a_lmax = \[50\] must be"),
    (lambda h: {**h, "network": {**h["network"], "product": "fourier"}}, "cannot be built .*product must be"),
    (lambda h: {**h, "network": {**h["network"], "warp_drive": 1}}, "cannot be built .*warp_drive"),
], ids=["layers", "channels", "float16", "elements", "cutoff", "a_lmax-list", "a_lmax-int", "product", "unknown"])
def test_hostile_hyperparameters_are_refused_before_building(potential, tmp_path, change, message):
    path = mlip.export.save(potential, tmp_path / "m.mlip")
    _rewrite(path, header=change)
    with pytest.raises(mlip.export.ModelFileError, match=message):
        mlip.export.load(path)


def test_zip_bomb_and_extra_members_are_refused(potential, tmp_path):
    path = mlip.export.save(potential, tmp_path / "m.mlip")
    with zipfile.ZipFile(path) as archive:
        header = archive.read("mlip.json")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:  # 64 MB of zeros, ~64 kB on disk
        archive.writestr("mlip.json", header)
        archive.writestr("weights.pt", bytes(64 << 20))
    assert path.stat().st_size < 1 << 20
    with pytest.raises(mlip.export.ModelFileError, match="zip bomb"):
        mlip.export.load(path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("extra.py", "print('hi')")
    with pytest.raises(mlip.export.ModelFileError, match="members"):
        mlip.export.load(path)


def test_float16_request_is_refused(potential, tmp_path):
    path = mlip.export.save(potential, tmp_path / "m.mlip")
    with pytest.raises(mlip.export.ModelFileError, match="float16 is not supported"):
        mlip.export.load(path, dtype=torch.float16)
