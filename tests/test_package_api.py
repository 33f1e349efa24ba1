"""The package's public surface: top-level API, shipped presets, `--version` on every command."""

from __future__ import annotations

import pytest

import mlip
from mlip.data.cli import main as preprocess_main
from mlip.export import save
from mlip.evaluate.cli import main as eval_main
from mlip.simulate.md_cli import main as md_main
from mlip.simulate.relax_cli import main as relax_main
from mlip.train.cli import main as train_main


def test_top_level_api_builds_saves_and_loads(tmp_path):
    potential = mlip.build_potential(elements=["H", "O"], cutoff=4.0, **mlip.load_preset("equivariant_small"))
    path = save(potential, tmp_path / "m.mlip")
    assert type(mlip.load(path)).__name__ == "Potential"
    assert mlip.__version__.count(".") == 2
    with pytest.raises(AttributeError):
        mlip.no_such_thing


@pytest.mark.parametrize("command,main", [("mlip-preprocess", preprocess_main), ("mlip-eval", eval_main),
                                          ("mlip-md", md_main), ("mlip-relax", relax_main)])
def test_every_command_has_version(command, main, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"{command} {mlip.__version__} (torch ")


def test_train_version(capsys):
    train_main(["--version"])
    assert capsys.readouterr().out.startswith(f"mlip-train {mlip.__version__}")
