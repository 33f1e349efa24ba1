"""Every model preset shipped in mlip/presets builds a potential that evaluates energies and forces."""

from __future__ import annotations

import pytest
import torch

import mlip.io
from mlip.graph import GraphBatch
from mlip.models import build_potential
from mlip.models.presets import load_preset, preset_names


@pytest.mark.parametrize("name", preset_names())
def test_preset_builds_and_runs(name, data_dir):
    options = load_preset(name)
    potential = build_potential(elements=["H", "C", "O"], cutoff=5.0, **options)
    frames = mlip.io.read(data_dir / "rmd17_aspirin_train200.npz")[:2]
    out = potential(GraphBatch.from_frames(frames, 5.0))
    assert out["energy"].shape == (2,) and torch.isfinite(out["forces"]).all()


def test_unknown_preset_lists_the_available_ones():
    with pytest.raises(FileNotFoundError, match="equivariant_small"):
        load_preset("nope")
