"""The scaling study's pieces that need no training: commands per mode and the summary."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from benchmarks.transformer_scaling import MODES, command, summarise


def _options(mode: str, epochs: int | None = None) -> dict:
    args = argparse.Namespace(epochs=epochs, minutes=2.0, transformer_lr=0.002, transformer_options={})
    run = command(mode, Path("train.xyz"), Path("valid.xyz"), Path("run"), args)
    return {"network": json.loads(run[run.index("--model.model_options") + 1]), "argv": run}


@pytest.mark.parametrize("mode", list(MODES))
def test_every_mode_trains_the_network_it_names(mode):
    options = _options(mode)
    argv, network = options["argv"], options["network"]
    assert argv[argv.index("--model.model") + 1] == ("equivariant_medium" if mode == "equivariant" else "transformer_small")
    assert ("frames" in network) == mode.startswith("frames")
    assert network.get("attention") == ("molecule" if mode.endswith("_molecule") else
                                        None if mode == "equivariant" else "neighbor")
    assert ("--model.symmetry_weight" in argv) == mode.startswith("objective")
    assert ("--model.rotation_augmentation" in argv) == (mode.startswith(("augmented", "objective")))
    assert "--trainer.max_time" in argv and "--trainer.max_time" not in _options(mode, epochs=3)["argv"]


def test_summary_compares_with_augmentation_and_equivariant_curve():
    def row(mode, force, curve):
        return {"size": 1000, "mode": mode, "test": {"all": {"force_mae_meV_A": force}}, "valid_curve": curve}

    rows = [row("augmented", 100.0, [[10, 0, 1, 300], [20, 1, 1, 200]]),
            row("frames", 80.0, [[10, 0, 1, 150], [20, 1, 1, 90]]),
            row("equivariant", 50.0, [[15, 0, 1, 160], [30, 1, 1, 120]])]
    summary = summarise(rows)["1000"]
    assert summary["force_mae_over_augmented"]["frames"] == pytest.approx(0.8)
    assert summary["seconds_to_equivariant_final_val_force"] == {"augmented": None, "frames": 20, "equivariant": 30}
    assert summary["equal_epochs"] == {"epochs": 2, "val_force_mae": {"augmented": 200, "frames": 90, "equivariant": 120}}
