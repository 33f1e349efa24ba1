"""Builders of front data sets: mixed rMD17 molecules (labels in eV, one test file per molecule), EMT slabs and molten cells."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import ase.io
import numpy as np

import mlip.io
from benchmarks import mixed_molecules

DATA = Path(__file__).resolve().parents[1] / "data"


def test_writes_each_molecules_frames_with_their_labels_in_ev(tmp_path, monkeypatch):
    source = tmp_path / "rmd17"
    source.mkdir()
    shutil.copy(DATA / "rmd17_aspirin_train200.npz", source / "aspirin_train_01.npz")
    shutil.copy(DATA / "rmd17_aspirin_test100.npz", source / "aspirin_test_01.npz")
    out = tmp_path / "mixed"
    monkeypatch.setattr(sys, "argv", ["mixed_molecules", "--out", str(out), "--data", str(source),
                                      "--molecules", "aspirin", "--train", "4", "--test", "3"])
    mixed_molecules.main()
    train = ase.io.read(out / "train.xyz", ":")
    test = ase.io.read(out / "test_aspirin.xyz", ":")
    assert len(train) == 4 and len(test) == 3
    frames = mlip.io.read(source / "aspirin_train_01.npz")
    for atoms in train:
        frame = frames[atoms.info["source_index"]]  # the frame it was drawn from, read by mlip (kcal/mol → eV)
        assert atoms.info["config_type"] == "aspirin"
        assert np.isclose(atoms.info["REF_energy"], frame.energy, rtol=0, atol=1e-6)
        np.testing.assert_allclose(atoms.arrays["REF_forces"], frame.forces, atol=1e-6)
        np.testing.assert_allclose(atoms.positions, frame.positions, atol=1e-6)
    assert len({atoms.info["source_index"] for atoms in train}) == 4  # drawn without replacement


def test_emt_slabs_are_periodic_in_plane_only_and_labelled_by_emt():
    from ase.calculators.emt import EMT

    from benchmarks.emt_alloy import structures

    slabs = structures(4, np.random.default_rng(0), kind="surface")
    for atoms in slabs:
        assert atoms.pbc.tolist() == [True, True, False] and "REF_stress" not in atoms.info
        assert np.allclose(atoms.cell[2, :2], 0) and np.allclose(atoms.cell[:2, 2], 0)  # vacuum axis unstrained
        assert 16 <= len(atoms) <= 25 and set(atoms.numbers) <= {28, 29, 79}
        gap = atoms.cell[2, 2] - np.ptp(atoms.positions[:, 2])
        assert gap > 14.0  # 8 Å of vacuum on each side, give or take the rattle
        labelled = atoms.copy()
        labelled.calc = EMT()
        assert np.isclose(labelled.get_potential_energy(), atoms.info["REF_energy"])
        np.testing.assert_allclose(labelled.get_forces(), atoms.arrays["REF_forces"], atol=1e-10)
    bulk = structures(1, np.random.default_rng(0))[0]
    assert bulk.pbc.all() and bulk.info["REF_stress"].shape == (3, 3)


def test_emt_liquid_cells_are_molten_and_labelled_by_emt():
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from benchmarks.emt_alloy import structures

    atoms = structures(1, np.random.default_rng(0), kind="liquid")[0]
    crystal = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((2, 2, 2))
    assert atoms.pbc.all() and atoms.info["REF_stress"].shape == (3, 3)
    assert 0.95 < atoms.get_volume() / crystal.get_volume() / 1.05 < 1.05  # 5 % expanded, times a random strain
    labelled = atoms.copy()
    labelled.calc = EMT()
    assert np.isclose(labelled.get_potential_energy(), atoms.info["REF_energy"])
    np.testing.assert_allclose(labelled.get_forces(), atoms.arrays["REF_forces"], atol=1e-10)
    # molten: pairs fill the crystal's gap between its first and second neighbour shells (2.6 and 3.7 Å); the
    # rattled crystal cells have 0.4-1 % of their pairs in 3.0-3.3 Å, molten ones 5-6 %
    distances = atoms.get_all_distances(mic=True)[np.triu_indices(len(atoms), 1)]
    assert np.mean((distances > 3.0) & (distances < 3.3)) > 0.03
    crystal_distances = structures(1, np.random.default_rng(0))[0].get_all_distances(mic=True)[np.triu_indices(32, 1)]
    assert np.mean((crystal_distances > 3.0) & (crystal_distances < 3.3)) < 0.02
