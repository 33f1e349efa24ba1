"""E0 options: least squares (default), average, isolated atoms from a file, explicit values; the shift follows."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest

import mlip.export
import mlip.io
from mlip.data.preprocess import preprocess
from mlip.data.reference_energies import residual_shift, resolve_reference_energies, underdetermined_note
from mlip.train.cli import main

ISOLATED = {1: -13.568422178253735, 6: -1026.8538996116154, 8: -2037.796869412825}


@pytest.fixture(scope="module")
def acac(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("acac")
    manifest = preprocess([data_dir / "acac_train_300K_100.xyz"], out / "shards", cutoff=4.0, workers=1, progress=False)
    return manifest, mlip.io.read(data_dir / "acac_train_300K_100.xyz")


def mean_residual(frames, references):
    return np.mean([(f.energy - sum(references[int(z)] for z in f.numbers)) / len(f.numbers) for f in frames])


@pytest.mark.parametrize("spec", ["least_squares", "average", "isolated", "given"])
def test_every_choice_covers_the_elements_and_its_shift_is_the_mean_residual(acac, data_dir, spec):
    manifest, frames = acac
    if spec == "isolated":
        spec = str(data_dir / "acac_isolated_atoms.xyz")
    elif spec == "given":
        spec = {"H": -13.0, "C": -1000.0, "O": -2000.0}
    references, method = resolve_reference_energies(spec, manifest)
    assert sorted(references) == [1, 6, 8] and method
    assert residual_shift(manifest, references, spec) == pytest.approx(mean_residual(frames, references), abs=1e-6)
    if spec == "average":
        assert len(set(references.values())) == 1
    if isinstance(spec, str) and spec.endswith(".xyz"):
        assert references == pytest.approx(ISOLATED)


def test_one_composition_is_flagged_as_underdetermined_and_a_mixed_set_is_not(acac, tmp_path):
    manifest, _ = acac  # conformations of one molecule: C5H8O2 fixes one combination of three E0s
    note = underdetermined_note(manifest)
    assert note is not None and "only 1 of the 3" in note and "--model.e0s isolated" in note
    rng = np.random.default_rng(0)
    frames = []
    for numbers in ([1, 1, 8], [6, 8], [6, 1, 1, 1, 1], [8, 8]):  # four compositions of H, C, O: rank 3
        n = len(numbers)
        frames.append(ase.Atoms(numbers, positions=rng.uniform(0, 4, (n, 3)) + 3 * np.arange(n)[:, None],
                                cell=[20, 20, 20], pbc=False))
        frames[-1].info["energy"] = -float(sum(numbers))
    ase.io.write(tmp_path / "mixed.xyz", frames)
    mixed = preprocess([tmp_path / "mixed.xyz"], tmp_path / "shards", cutoff=4.0, workers=1, progress=False)
    assert mixed["labels"]["energy"] == 4 and underdetermined_note(mixed) is None


def test_bad_choices_are_refused_with_the_reason(acac, data_dir):
    manifest, _ = acac
    with pytest.raises(ValueError, match="no energy for O"):
        resolve_reference_energies({"H": -13.0, "C": -1000.0}, manifest)
    with pytest.raises(ValueError, match="not an element symbol"):
        resolve_reference_energies({"Hx": 1.0}, manifest)
    with pytest.raises(ValueError, match="no such file"):
        resolve_reference_energies("missing/isolated.xyz", manifest)
    with pytest.raises(ValueError, match="one atom per frame"):
        resolve_reference_energies(str(data_dir / "acac_train_300K_100.xyz"), manifest)


def test_training_with_isolated_atom_e0s_stores_them(data_dir, tmp_path):
    run = tmp_path / "run"
    main(["--run_dir", str(run), "--data.train", str(data_dir / "acac_train_300K_100.xyz"), "--data.val_fraction", "0.1",
          "--data.batch_size", "10", "--data.cutoff", "4.0", "--model.model", "equivariant_small",
          "--model.model_options", '{"channels": 8}', "--model.e0s", str(data_dir / "acac_isolated_atoms.xyz"),
          "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
          "--trainer.enable_model_summary", "false"])
    model = mlip.export.load(run / "model.mlip")
    stored = dict(zip(model.atomic_numbers, model.reference.tolist()))
    assert stored == pytest.approx(ISOLATED)


def test_isolated_atom_frames_leave_training_and_become_the_e0s(data_dir, tmp_path):
    """MACE's convention: IsolatedAtom frames inside the training file (here without forces)."""
    frames = ase.io.read(data_dir / "acac_isolated_atoms.xyz", ":") + ase.io.read(data_dir / "acac_train_300K_100.xyz", ":20")
    for atoms in frames[:3]:
        energy = atoms.get_potential_energy()
        atoms.calc = None
        atoms.info.update(energy=energy, config_type="IsolatedAtom")
    ase.io.write(tmp_path / "train.xyz", frames)
    manifest = preprocess([tmp_path / "train.xyz"], tmp_path / "shards", cutoff=4.0, workers=1, progress=False,
                          read_options={"require": ("energy", "forces")})
    assert manifest["n_structures"] == 20
    references, method = resolve_reference_energies("isolated", manifest)
    assert references == pytest.approx(ISOLATED) and "IsolatedAtom" in method
    only_isolated = preprocess([data_dir / "acac_isolated_atoms.xyz"], tmp_path / "empty", cutoff=4.0, workers=1,
                               progress=False)
    assert only_isolated["n_structures"] == 0 and only_isolated["isolated_atom_energies"]["O"] == pytest.approx(ISOLATED[8])
    with pytest.raises(ValueError, match="no energy for H, C, O"):
        resolve_reference_energies("isolated", preprocess([data_dir / "acac_train_300K_100.xyz"], tmp_path / "none",
                                                          cutoff=4.0, workers=1, progress=False))
