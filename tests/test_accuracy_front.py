"""The accuracy-front harness' pieces that need no training: split files, E0s, errors, curves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest

from benchmarks.accuracy_front import (earlier_result, errors, finished_runs, least_squares_e0s, mace_command, mace_curve, mlip_command, prepare,
                                       run_jobs, time_to_reach, variant_options)


def test_split_files_are_shared_and_disjoint(tmp_path, data_dir):
    data = prepare([data_dir / "acac_train_300K_100.xyz"], [data_dir / "acac_test_MD_300K_50.xyz"], tmp_path,
                   n_valid=50, seed=0)
    train, valid = ase.io.read(data["files"]["train"], ":"), ase.io.read(data["files"]["valid"], ":")
    assert (len(train), len(valid)) == (90, 10)  # validation capped at 10 % of the frames
    positions = {a.positions.tobytes() for a in train}
    assert not any(a.positions.tobytes() in positions for a in valid)
    assert all("REF_energy" in a.info and "REF_forces" in a.arrays for a in train + valid)
    assert len(ase.io.read(data["tests"]["acac_test_MD_300K_50"], ":")) == 50
    assert set(data["e0s"]) == {1, 6, 8} and not data["stress"]


def test_files_with_other_label_keys_are_read_with_read_options(tmp_path, data_dir):
    """Your own files (here the harness' REF_-labelled split) need their keys; without them, the error says which."""
    (tmp_path / "a").mkdir()
    first = prepare([data_dir / "acac_train_300K_100.xyz"], [data_dir / "acac_test_MD_300K_50.xyz"], tmp_path / "a",
                    n_valid=10, seed=0)
    keys = {"energy_key": "REF_energy", "forces_key": "REF_forces"}
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    again = prepare([first["files"]["train"]], [first["files"]["valid"]], tmp_path / "b", n_valid=10, seed=0,
                    read_options=keys)
    assert again["n_train"] + again["n_valid"] == first["n_train"] and again["e0s"] == pytest.approx(first["e0s"])
    from mlip.io import InvalidStructureError
    with pytest.raises(InvalidStructureError, match="pass energy_key='REF_energy'"):
        prepare([first["files"]["train"]], [first["files"]["valid"]], tmp_path / "c", n_valid=10, seed=0)


def test_least_squares_e0s_recover_per_element_energies():
    from mlip.io import Frame

    truth = {1: -13.6, 8: -2041.0}
    frames = []
    for n_h, n_o in [(2, 1), (4, 2), (1, 3), (5, 1)]:
        numbers = np.array([1] * n_h + [8] * n_o)
        frames.append(Frame(numbers=numbers, positions=np.random.default_rng(n_h).random((len(numbers), 3)) * 5,
                            energy=sum(truth[z] for z in numbers)))
    assert least_squares_e0s(frames) == pytest.approx(truth)


def test_errors_report_offset_removed_energy_mae():
    reference = []
    for n in (3, 5):
        atoms = ase.Atoms("H" * n, positions=np.random.default_rng(n).random((n, 3)) * 4)
        atoms.info["REF_energy"] = -1.0 * n
        atoms.arrays["REF_forces"] = np.zeros((n, 3))
        reference.append(atoms)
    energies = np.array([-3.0 + 0.5, -5.0 + 0.7])  # constant offset 0.6 eV ± 0.1
    forces = [np.full((3, 3), 0.01), np.full((5, 3), -0.02)]
    result = errors(reference, energies, forces, None)
    assert "by_config_type" not in result  # one kind of structure: no breakdown
    assert result["energy_mae_meV"] == pytest.approx(600.0)
    assert result["energy_mae_offset_removed_meV"] == pytest.approx(100.0)
    assert result["energy_mean_signed_meV"] == pytest.approx(600.0)
    assert result["force_mae_meV_A"] == pytest.approx(1e3 * (9 * 0.01 + 15 * 0.02) / 24)
    assert "stress_mae_meV_A3" not in result


def test_curves_share_units_and_time_to_reach(tmp_path):
    (tmp_path / "result.json").write_text(json.dumps({"valid_curve": [[5.0, -1, 300.0, 900.0, "total"],
                                                                      [60.0, 0, 210.0, 80.0, "total"],
                                                                      [120.0, 1, 105.0, 40.0, "total"]]}))
    curve = mace_curve(tmp_path, mean_atoms=21.0)
    assert curve == [[60.0, 0, 10.0, 80.0], [120.0, 1, 5.0, 40.0]]  # initial point dropped, meV/atom
    assert time_to_reach(curve, 50.0) == 120.0 and time_to_reach(curve, 10.0) is None


def test_variants_from_presets_and_json(tmp_path):
    assert variant_options("equivariant_small") == ("equivariant_small", {"preset": "equivariant_small"})
    name, options = variant_options('{"preset": "equivariant_medium", "sh_lmax": 3, "model.late_energy_weight": 10}')
    assert name == "equivariant_medium+sh_lmax=3+model.late_energy_weight=10"
    data = {"files": {"train": tmp_path / "t.xyz", "valid": tmp_path / "v.xyz"}, "stress": True}
    command = mlip_command(options, data, tmp_path / "run", 90.0)
    assert command[command.index("--model.model_options") + 1] == '{"sh_lmax": 3}'
    assert command[command.index("--model.late_energy_weight") + 1] == "10"
    assert command[command.index("--trainer.max_time") + 1] == "00:00:01:30"
    assert float(command[command.index("--model.stress_weight") + 1]) > 0
    # data.* options override the common recipe: the later flag wins in mlip-train's parser
    _, options = variant_options('{"preset": "equivariant_medium", "data.batch_size": 2}')
    command = mlip_command(options, data, tmp_path / "run", 90.0)
    assert command[len(command) - 1 - command[::-1].index("--data.batch_size") + 1] == "2"
    assert command[command.index("--model.model_options") + 1] == "{}"
    # so are the EMA decay, the seed and Lightning's options; they are not model options
    _, options = variant_options('{"ema_decay": 0.999, "seed_everything": 3, "trainer.gradient_clip_val": 5}')
    command = mlip_command(options, data, tmp_path / "run", 90.0)
    assert command[len(command) - 1 - command[::-1].index("--ema_decay") + 1] == "0.999"
    assert command[command.index("--seed_everything") + 1] == "3"
    assert command[command.index("--trainer.gradient_clip_val") + 1] == "5"
    assert command[command.index("--model.model_options") + 1] == "{}"


def test_the_stress_weight_is_the_same_on_both_sides(tmp_path):
    data = {"files": {"train": tmp_path / "t.xyz", "valid": tmp_path / "v.xyz"}, "stress": True, "e0s": {14: -5.0}}
    ours = mlip_command({"preset": "equivariant_medium"}, data, tmp_path / "run", 90.0, stress_weight=100.0)
    theirs = mace_command("python", data, tmp_path / "mace", 90.0, stress_weight=100.0)
    assert float(ours[ours.index("--model.stress_weight") + 1]) == float(theirs[theirs.index("--stress_weight") + 1]) == 100
    data["stress"] = False  # unlabelled data: no stress term on either side
    unlabelled = mlip_command({}, data, tmp_path / "run", 90.0, 100.0)
    assert float(unlabelled[unlabelled.index("--model.stress_weight") + 1]) == 0
    assert "--stress_weight" not in mace_command("python", data, tmp_path / "mace", 90.0, 100.0)


def test_a_rerun_replaces_the_previous_run_instead_of_resuming_it(tmp_path):
    """mlip-train treats a finished run folder as done; the front must retrain, so it clears it."""
    folder = tmp_path / "job"
    folder.mkdir()
    (folder / "model.mlip").write_text("stale")
    cost = run_jobs([("job", [sys.executable, "-c", "pass"], folder)])
    assert not (folder / "model.mlip").exists() and (folder / "time.txt").exists()
    assert cost["job"]["wall_s"] >= 0


def test_a_failed_job_stops_its_partner_and_the_next_pair_still_runs(tmp_path):
    """When one job of a pair fails, the other (and anything it started) does not run on alone
    (it would get the machine to itself); both are reported failed and the next pair runs."""
    import time

    marker = tmp_path / "partner_finished"
    partner = f"import time, pathlib; time.sleep(30); pathlib.Path({str(marker)!r}).write_text('x')"
    started = time.monotonic()
    done = run_jobs([("partner", [sys.executable, "-c", partner], tmp_path / "partner"),
                     ("bad", [sys.executable, "-c", "import sys; sys.exit(2)"], tmp_path / "bad"),
                     ("next", [sys.executable, "-c", "pass"], tmp_path / "next")])
    assert time.monotonic() - started < 20 and not marker.exists()
    assert "bad exited 2" in done["bad"]["failed"] and done["partner"]["failed"] == done["bad"]["failed"]
    assert "failed" not in done["next"] and done["next"]["wall_s"] >= 0


def test_evaluate_only_reads_finished_runs_and_trains_nothing(tmp_path):
    """--evaluate-only: a run that finished (model file, zero exit status) keeps its cost record;
    a folder without one is reported failed, and nothing is launched or removed."""
    good, bare = tmp_path / "good", tmp_path / "bare"
    run_jobs([("good", [sys.executable, "-c", "pass"], good)])
    (good / "model.mlip").write_text("trained")
    bare.mkdir()
    done = finished_runs([("good", ["never-run"], good), ("bare", ["never-run"], bare)])
    assert done["good"]["wall_s"] >= 0 and "failed" not in done["good"]
    assert "no finished run" in done["bare"]["failed"]
    assert (good / "model.mlip").read_text() == "trained" and not (bare / "time.txt").exists()


def test_errors_by_config_type():
    """Where the test frames say what kind of structure they are (mlearn's groups), errors per kind."""
    reference = []
    for n, kind in [(2, "Surface"), (4, "Bulk"), (3, "Surface")]:
        atoms = ase.Atoms("H" * n, positions=np.random.default_rng(n).random((n, 3)) * 4, info={"config_type": kind})
        atoms.info["REF_energy"] = 0.0
        atoms.arrays["REF_forces"] = np.zeros((n, 3))
        reference.append(atoms)
    forces = [np.full((2, 3), 0.1), np.full((4, 3), 0.4), np.full((3, 3), 0.2)]
    result = errors(reference, np.array([0.2, 0.4, 0.6]), forces, None)
    by = result["by_config_type"]
    assert by["Bulk"]["frames"] == 1 and by["Bulk"]["force_mae_meV_A"] == pytest.approx(400.0)
    assert by["Surface"]["frames"] == 2 and by["Surface"]["force_mae_meV_A"] == pytest.approx(1e3 * (6 * 0.1 + 9 * 0.2) / 15)
    assert by["Surface"]["energy_mae_meV_per_atom"] == pytest.approx(1e3 * (0.2 / 2 + 0.6 / 3) / 2)


def test_mlearn_groups_become_config_types(tmp_path):
    from mlip.io.mptrj_reader import read_mptrj

    record = {"structure": {"lattice": {"matrix": [[3.0, 0, 0], [0, 3.0, 0], [0, 0, 3.0]]},
                            "sites": [{"species": [{"element": "Mo", "occu": 1}], "xyz": [0.0, 0.0, 0.0]}]},
              "group": "Elastic", "outputs": {"energy": -10.0, "forces": [[0.0, 0.0, 0.0]],
                                              "virial_stress": [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]}}
    path = tmp_path / "mo.json"
    path.write_text(json.dumps([record]))
    frame = next(read_mptrj(path, shear_order=("xy", "zx", "yz")))
    assert frame.config_type == "Elastic" and frame.to_atoms().info["config_type"] == "Elastic"


def test_error_correlation_per_kind():
    """front_breakdown's correlation of two models' force errors: +1 for the same errors scaled, −1 for opposite
    ones, per kind and over all frames."""
    from benchmarks.front_breakdown import error_correlation

    rng = np.random.default_rng(0)
    reference = []
    for n, kind in [(4, "Liquid"), (5, "Bulk"), (3, "Liquid")]:
        atoms = ase.Atoms("Mo" * n, positions=rng.random((n, 3)) * 4, info={"config_type": kind})
        atoms.arrays["REF_forces"] = rng.normal(size=(n, 3))
        reference.append(atoms)
    error = [rng.normal(size=(len(a), 3)) for a in reference]
    mine = [a.arrays["REF_forces"] + e for a, e in zip(reference, error)]
    scaled = [a.arrays["REF_forces"] + 2.0 * e for a, e in zip(reference, error)]  # the same errors, larger
    opposite = [a.arrays["REF_forces"] - e if a.info["config_type"] == "Bulk" else a.arrays["REF_forces"] + e
                for a, e in zip(reference, error)]
    same = error_correlation(reference, mine, scaled)
    assert same == pytest.approx({"Bulk": 1.0, "Liquid": 1.0, "all": 1.0})
    mixed = error_correlation(reference, mine, opposite)
    assert mixed["Bulk"] == pytest.approx(-1.0) and mixed["Liquid"] == pytest.approx(1.0) and -1 < mixed["all"] < 1


def test_a_run_refuses_to_replace_an_earlier_result_of_the_same_name(tmp_path):
    """A result of the same --name is named (so the harness can refuse it without --overwrite); a new name is free."""
    assert earlier_result("aspirin_x", tmp_path) is None
    (tmp_path / "accuracy_front_aspirin_x.json").write_text("{}")
    assert earlier_result("aspirin_x", tmp_path) == tmp_path / "accuracy_front_aspirin_x.json"
    assert earlier_result("aspirin_y", tmp_path) is None
    root = Path(__file__).resolve().parents[1]
    kept = sorted((root / "benchmarks" / "results").glob("accuracy_front_*.json"))[0]  # a committed result
    name = kept.stem.removeprefix("accuracy_front_")
    run = subprocess.run([sys.executable, "-m", "benchmarks.accuracy_front", "--dataset", "aspirin", "--name",
                          name, "--work", str(tmp_path / "work")], capture_output=True, text=True, cwd=root)
    assert run.returncode == 2 and f"holds an earlier result named '{name}'" in run.stderr
    assert "--overwrite" in run.stderr and not (tmp_path / "work").exists()
