"""Shards round-trip frames exactly; the manifest's statistics are right; writing is atomic and resumable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

import mlip.io
from mlip.data import ShardDataset, load_manifest, preprocess
from mlip.data.preprocess import PreprocessConflictError
from mlip.data.shards import is_complete_shard
from mlip.graph import build_graph


def test_round_trip_is_exact(data_dir, emt_extxyz, tmp_path):
    inputs = [data_dir / "acac_train_300K_100.xyz", emt_extxyz]
    manifest = preprocess(inputs, tmp_path / "out", cutoff=4.5, shard_size=40, workers=1, progress=False)
    frames = mlip.io.read(inputs[0]) + mlip.io.read(inputs[1])
    dataset = ShardDataset(tmp_path / "out")
    assert len(dataset) == len(frames) == manifest["n_structures"] == 106
    assert [s["n_frames"] for s in manifest["shards"]] == [40, 40, 20, 6]  # shards never span files
    for k in (0, 39, 40, 99, 100, 105):
        graph, frame = dataset[k], frames[k]
        expected = build_graph(frame, 4.5)
        np.testing.assert_array_equal(graph.numbers, frame.numbers)
        np.testing.assert_array_equal(graph.positions, frame.positions)
        np.testing.assert_array_equal(graph.forces, frame.forces)
        np.testing.assert_array_equal(graph.receivers, expected.receivers)
        np.testing.assert_array_equal(graph.senders, expected.senders)
        np.testing.assert_array_equal(graph.shifts, expected.shifts)
        assert graph.energy == frame.energy
        if frame.stress is None:
            assert np.isnan(graph.stress).all()
        else:
            np.testing.assert_array_equal(graph.stress, frame.stress)


def test_manifest_statistics(data_dir, emt_extxyz, tmp_path):
    inputs = [data_dir / "acac_train_300K_100.xyz", emt_extxyz]
    manifest = preprocess(inputs, tmp_path / "out", cutoff=4.5, shard_size=30, workers=1, progress=False)
    frames = mlip.io.read(inputs[0]) + mlip.io.read(inputs[1])
    elements = [1, 6, 8, 29]
    counts = np.array([[np.sum(f.numbers == z) for z in elements] for f in frames], dtype=float)
    energies = np.array([f.energy for f in frames])
    solution = np.linalg.lstsq(counts, energies, rcond=None)[0]
    assert manifest["elements"] == ["H", "C", "O", "Cu"]
    for symbol, value in zip(manifest["elements"], solution):
        assert manifest["reference_energies"][symbol] == pytest.approx(value, rel=1e-6, abs=1e-6)
    residual = (energies - counts @ solution) / counts.sum(axis=1)
    assert manifest["energy_per_atom_residual"]["mean"] == pytest.approx(residual.mean(), abs=1e-8)
    assert manifest["energy_per_atom_residual"]["std"] == pytest.approx(residual.std(), rel=1e-5)
    all_forces = np.concatenate([f.forces for f in frames])
    assert manifest["force_rms"] == pytest.approx(np.sqrt(np.mean(all_forces**2)))
    n_edges = sum(build_graph(f, 4.5).n_edges for f in frames)
    assert manifest["n_edges"] == n_edges
    assert manifest["mean_neighbors"] == pytest.approx(n_edges / sum(f.n_atoms for f in frames))
    assert manifest["labels"] == {"energy": 106, "forces": 100 * 15 + 6 * 32, "stress": 6}
    assert manifest["produced_by"]["mlip_version"]


def test_parallel_equals_serial(data_dir, tmp_path):
    source = data_dir / "rmd17_aspirin_train200.npz"
    serial = preprocess([source], tmp_path / "a", cutoff=5.0, shard_size=30, workers=1, progress=False)
    parallel = preprocess([source], tmp_path / "b", cutoff=5.0, shard_size=30, workers=2, progress=False)
    assert serial["shards"] == parallel["shards"]
    assert serial["reference_energies"] == pytest.approx(parallel["reference_energies"])
    with h5py.File(tmp_path / "a" / "shard_00003.h5") as a, h5py.File(tmp_path / "b" / "shard_00003.h5") as b:
        for name in ("positions", "receivers", "senders", "shifts", "energy", "forces"):
            np.testing.assert_array_equal(a[name][()], b[name][()])


def test_other_inputs_in_same_folder_are_refused(data_dir, tmp_path):
    preprocess([data_dir / "acac_test_MD_300K_50.xyz"], tmp_path / "o", cutoff=4.0, workers=1, progress=False)
    with pytest.raises(PreprocessConflictError, match="--overwrite"):
        preprocess([data_dir / "acac_test_MD_300K_50.xyz"], tmp_path / "o", cutoff=5.0, workers=1, progress=False)
    manifest = preprocess([data_dir / "acac_test_MD_300K_50.xyz"], tmp_path / "o", cutoff=5.0, workers=1,
                          progress=False, overwrite=True)
    assert load_manifest(tmp_path / "o")["cutoff"] == manifest["cutoff"] == 5.0


def test_bad_frame_leaves_no_shard(tmp_path):
    good = "2\nenergy=-1.0 pbc=\"F F F\"\nH 0 0 0\nH 0 0 0.74\n"
    (tmp_path / "in.xyz").write_text(good * 3 + good.replace("0.74", "0.01"))
    with pytest.raises(mlip.io.InvalidStructureError, match="frame 3"):
        preprocess([tmp_path / "in.xyz"], tmp_path / "o", cutoff=3.0, workers=1, progress=False, min_distance=0.5)
    assert not list((tmp_path / "o").glob("shard_*")) and not list((tmp_path / "o").glob("*.tmp.*"))


def _big_npz(data_dir, path, copies=20):
    raw = np.load(data_dir / "rmd17_aspirin_train200.npz")
    rng = np.random.default_rng(0)
    coords = np.concatenate([raw["coords"] + 0.01 * rng.standard_normal(raw["coords"].shape) for _ in range(copies)])
    np.savez(path, nuclear_charges=raw["nuclear_charges"], coords=coords,
             energies=np.tile(raw["energies"], copies), forces=np.tile(raw["forces"], (copies, 1, 1)))


def _command(source, out):
    return [sys.executable, "-m", "mlip.data.cli", str(source), "--cutoff", "6", "--out", str(out),
            "--shard-size", "5", "--workers", "2", "--quiet"]


def test_killed_preprocess_leaves_no_partial_shard_and_resumes(data_dir, tmp_path):
    source = tmp_path / "aspirin_x20.npz"
    _big_npz(data_dir, source)
    out = tmp_path / "killed"
    process = subprocess.Popen(_command(source, out), start_new_session=True)
    deadline = time.time() + 120
    while len(list(out.glob("shard_*.h5"))) < 5 and time.time() < deadline and process.poll() is None:
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (out / "manifest.json").exists(), "the run finished before it could be killed; make it longer"
    survivors = sorted(out.glob("shard_*.h5"))
    assert 5 <= len(survivors) < 800
    assert all(is_complete_shard(p) for p in survivors)
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in survivors}

    subprocess.run(_command(source, out), check=True)
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("shard_*.h5")}
    assert all(after[name] == stamp for name, stamp in before.items()), "finished shards were rewritten"
    assert len(after) == 800 and not list(out.glob("*.tmp.*"))

    fresh = tmp_path / "fresh"
    subprocess.run(_command(source, fresh), check=True)
    resumed, clean = (json.loads((d / "manifest.json").read_text()) for d in (out, fresh))
    assert resumed["shards"] == clean["shards"] and resumed["n_edges"] == clean["n_edges"]
    assert resumed["reference_energies"] == pytest.approx(clean["reference_energies"])
    a, b = ShardDataset(out), ShardDataset(fresh)
    for k in (0, 1234, 3999):
        np.testing.assert_array_equal(a[k].senders, b[k].senders)
        np.testing.assert_array_equal(a[k].positions, b[k].positions)
