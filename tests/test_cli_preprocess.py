"""`mlip-preprocess` runs, reports, and fails with a one-line reason on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

from mlip.data.cli import main


def test_help_lists_options():
    result = subprocess.run([sys.executable, "-m", "mlip.data.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--cutoff" in result.stdout and "--energy-key" in result.stdout


def test_preprocess_shipped_data(data_dir, tmp_path, capsys):
    code = main([str(data_dir / "acac_train_300K_100.xyz"), "--cutoff", "5", "--out", str(tmp_path), "--quiet",
                 "--require", "energy", "forces", "--workers", "1"])
    assert code == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["n_structures"] == 100 and manifest["elements"] == ["H", "C", "O"]
    output = capsys.readouterr().out
    assert "100 structures" in output and "next:" in output


def test_bad_input_exits_non_zero_with_reason(tmp_path, capsys):
    missing = tmp_path / "missing.xyz"
    assert main([str(missing), "--cutoff", "5", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "missing.xyz" in error and "does not exist" in error


def _mace_style_file(tmp_path):
    """Two Cu cells labelled as MACE's files are (REF_energy, REF_forces)."""
    import ase.io
    import numpy as np
    from ase.build import bulk

    frames = []
    for k in range(2):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.02, seed=k)
        atoms.info["REF_energy"] = -14.0
        atoms.arrays["REF_forces"] = np.zeros((4, 3))
        frames.append(atoms)
    ase.io.write(tmp_path / "mace_style.xyz", frames, format="extxyz")
    return tmp_path / "mace_style.xyz"


def test_files_whose_labels_go_unread_get_a_warning_naming_the_keys(tmp_path, capsys):
    """Without --energy-key the REF_ labels are not read: the shards carry no label, and the run says so
    (and how to name them) instead of leaving shards that cannot train; the default cutoff is 5 Å."""
    path = _mace_style_file(tmp_path)
    assert main([str(path), "--out", str(tmp_path / "plain"), "--quiet", "--workers", "1"]) == 0
    captured = capsys.readouterr()
    assert "labelled: energy 0 structures, forces 0 atoms" in captured.out and "next:" not in captured.out
    assert "cannot train a model" in captured.err and "--energy-key REF_energy" in captured.err
    assert json.loads((tmp_path / "plain" / "manifest.json").read_text())["cutoff"] == 5.0
    assert main([str(path), "--out", str(tmp_path / "named"), "--quiet", "--workers", "1", "--energy-key",
                 "REF_energy", "--forces-key", "REF_forces"]) == 0
    captured = capsys.readouterr()
    assert "labelled: energy 2 structures, forces 8 atoms" in captured.out and captured.err == ""


def test_the_inspection_the_run_suggests_is_part_of_the_package(data_dir, tmp_path, capsys):
    """The 'next:' line names `python -m mlip.data.inspect` (installed with mlip, not a repository script),
    which summarises the shards and draws their distributions."""
    from mlip.data.inspect import main as inspect_main

    assert main([str(data_dir / "acac_train_300K_100.xyz"), "--out", str(tmp_path / "shards"), "--quiet",
                 "--workers", "1"]) == 0
    assert "python -m mlip.data.inspect" in capsys.readouterr().out
    inspect_main([str(tmp_path / "shards"), "--plot", str(tmp_path / "data.png")])
    output = capsys.readouterr().out
    assert "100 structures" in output and "elements: H" in output and (tmp_path / "data.png").stat().st_size > 0
