"""mlip-eval: one folder per data file with metrics, parity plot and predictions beside the labels."""

from __future__ import annotations

import json

import ase.io
import numpy as np
import pytest

import mlip
from mlip.export import save
from mlip.evaluate.cli import main


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    potential = mlip.build_potential(elements=["H", "C", "O"], cutoff=4.0,
                                     **{**mlip.load_preset("equivariant_small"), "channels": 8})
    return save(potential, tmp_path_factory.mktemp("model") / "model.mlip"), potential


def test_each_file_gets_metrics_plot_and_predictions_matching_the_model(model_file, data_dir, tmp_path):
    path, potential = model_file
    files = [data_dir / "acac_test_MD_300K_50.xyz", data_dir / "rmd17_aspirin_test100.npz"]
    assert main([str(path), *map(str, files), "--out", str(tmp_path)]) == 0
    for file, count in ((files[0], 50), (files[1], 100)):
        folder = tmp_path / file.stem
        assert json.loads((folder / "metrics.json").read_text())["structures"] == count
        assert (folder / "parity.png").stat().st_size > 0
    written = ase.io.read(tmp_path / files[0].stem / "predictions.xyz", ":")
    reference = ase.io.read(files[0], ":")
    assert len(written) == 50
    calc = mlip.MLIPCalculator(potential)
    for frame, original in zip(written[:2], reference[:2]):
        np.testing.assert_allclose(frame.positions, original.positions, atol=1e-5)
        assert frame.get_potential_energy() == pytest.approx(original.get_potential_energy(), abs=1e-4)  # reference
        np.testing.assert_allclose(frame.get_forces(), original.get_forces(), atol=1e-6)
        atoms = original.copy()
        atoms.calc = calc
        assert frame.info["mlip_energy"] == pytest.approx(atoms.get_potential_energy(), abs=1e-3)
        np.testing.assert_allclose(frame.arrays["mlip_forces"], atoms.get_forces(), atol=1e-4)


def test_frames_without_forces_are_evaluated_on_energies(model_file, data_dir, tmp_path):
    path, _ = model_file
    frames = ase.io.read(data_dir / "acac_test_MD_300K_50.xyz", ":5")
    for atoms in frames:
        energy = atoms.get_potential_energy()
        atoms.calc = None
        atoms.info["energy"] = energy
    ase.io.write(tmp_path / "energies_only.xyz", frames)
    assert main([str(path), str(tmp_path / "energies_only.xyz"), "--out", str(tmp_path / "eval")]) == 0
    metrics = json.loads((tmp_path / "eval" / "energies_only" / "metrics.json").read_text())
    assert "energy_mae" in metrics and "forces_mae" not in metrics


def test_naming_a_stress_label_evaluates_stress(tmp_path):
    """MACE-style crystal files (REF_ keys): `--stress-key REF_stress` alone evaluates stress too."""
    from ase.build import bulk

    potential = mlip.build_potential(elements=["Cu"], cutoff=4.0, **{**mlip.load_preset("equivariant_small"),
                                                                     "channels": 8})
    path = save(potential, tmp_path / "cu.mlip")
    frames = []
    for k in range(3):
        atoms = bulk("Cu", "fcc", a=3.6 + 0.02 * k, cubic=True)
        atoms.rattle(0.02, seed=k)
        atoms.info["REF_energy"] = -14.0 + 0.1 * k
        atoms.info["REF_stress"] = np.array([0.01 * k, 0.0, 0.0, 0.0, 0.0, 0.0])
        atoms.arrays["REF_forces"] = np.zeros((len(atoms), 3))
        frames.append(atoms)
    ase.io.write(tmp_path / "cu.xyz", frames, format="extxyz")
    assert main([str(path), str(tmp_path / "cu.xyz"), "--out", str(tmp_path / "eval"), "--energy-key", "REF_energy",
                 "--forces-key", "REF_forces", "--stress-key", "REF_stress"]) == 0
    metrics = json.loads((tmp_path / "eval" / "cu" / "metrics.json").read_text())
    assert {"energy_mae", "forces_mae", "stress_mae"} <= set(metrics)
