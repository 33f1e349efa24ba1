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
