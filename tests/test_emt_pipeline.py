"""End to end on a crystal: train on EMT-labelled Cu with stress, relax a strained cell with the
model, and recover EMT's lattice constant (0.5 %) and bulk modulus (10 %)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "emt_crystal_pipeline.py"


def test_trained_model_recovers_emt_lattice_constant_and_bulk_modulus(tmp_path):
    spec = importlib.util.spec_from_file_location("emt_crystal_pipeline", EXAMPLE)
    pipeline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pipeline)
    result = pipeline.main(["--out", str(tmp_path), "--epochs", "30", "--structures", "60"])
    assert abs(result["lattice_error_percent"]) < 0.5
    assert abs(result["bulk_modulus_error_percent"]) < 10.0
    assert result["emt"]["lattice_A"] == pytest.approx(3.59, abs=0.01)
