"""Run lifecycle: a finished run is left alone, resume keeps the history, changed configs are refused."""

from __future__ import annotations

import csv

import pytest

from mlip.train.cli import main


def _train(run, data_dir, *extra):
    main(["--run_dir", str(run), "--data.train", str(data_dir / "acac_test_MD_300K_50.xyz"), "--data.val_fraction",
          "0.2", "--data.batch_size", "10", "--data.cutoff", "4.0", "--model.model", "equivariant_small",
          "--model.model_options", '{"channels": 4}', "--trainer.enable_model_summary", "false", *extra])


def _epochs(run):
    return sorted({int(r["epoch"]) for r in csv.DictReader(open(run / "metrics.csv")) if r.get("val_forces_mae")})


def test_finished_run_is_left_alone_unless_overwritten(data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    _train(run, data_dir, "--trainer.max_epochs", "1")
    stamp = (run / "model.mlip").stat().st_mtime_ns
    _train(run, data_dir, "--trainer.max_epochs", "1")
    assert "holds a finished run" in capsys.readouterr().out and (run / "model.mlip").stat().st_mtime_ns == stamp
    with pytest.raises(SystemExit, match="2"):
        _train(run, data_dir, "--trainer.max_epochs", "1", "--resume", "never")
    assert "already holds a run" in capsys.readouterr().err
    _train(run, data_dir, "--trainer.max_epochs", "1", "--overwrite", "true")
    assert (run / "model.mlip").stat().st_mtime_ns != stamp and _epochs(run) == [0]


def test_resume_keeps_the_whole_history_and_refuses_a_changed_config(data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    _train(run, data_dir, "--trainer.max_epochs", "2")
    (run / "model.mlip").unlink()  # as if stopped before the end: checkpoints remain
    with pytest.raises(SystemExit, match="2"):
        _train(run, data_dir, "--trainer.max_epochs", "4", "--model.lr", "0.001")
    assert "model.lr: 0.01 -> 0.001" in capsys.readouterr().err
    _train(run, data_dir, "--trainer.max_epochs", "4")  # longer training may change
    assert _epochs(run) == [0, 1, 2, 3] and not list(run.glob("metrics_part*.csv"))
    assert sum(1 for line in open(run / "train.log") if line.startswith("epoch")) == 4
