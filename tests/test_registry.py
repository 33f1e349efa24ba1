"""Architectures from outside mlip: registered, trained by mlip-train, saved, loaded, run by the calculator."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import mlip
from mlip.models import registered_architectures
from mlip.models.registry import register_architecture

ROOT = Path(__file__).resolve().parents[1]


def load_example():
    spec = importlib.util.spec_from_file_location("third_party_architecture",
                                                  ROOT / "examples" / "third_party_architecture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_architecture_trains_saves_and_loads(tmp_path):
    example = load_example()
    result = example.main(["--epochs", "2", "--out", str(tmp_path)])
    assert result["architecture"] == "continuous_filter" and "continuous_filter" in registered_architectures()
    assert 0 < result["test_force_mae_eV_per_A"] < 5.0
    loaded = mlip.load(tmp_path / "run" / "model.mlip")
    assert type(loaded.network).__name__ == "ContinuousFilterNetwork"


def test_a_name_cannot_be_taken_twice():
    with pytest.raises(ValueError, match="already registered"):
        register_architecture("equivariant", lambda num_species, cutoff: torch.nn.Linear(1, 1))


def test_unknown_architecture_says_how_to_register():
    with pytest.raises(ValueError, match="register_architecture"):
        mlip.build_potential("not_installed", elements=["H"], cutoff=3.0)
