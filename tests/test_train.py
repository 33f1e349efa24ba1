"""mlip-train: fits both radial variants, writes a complete run folder, resumes after kill -9,
and trains data-parallel on 2 CPU processes (gloo) with different data and identical weights."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

import mlip.export
from mlip.train.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _args(run: Path, data: Path, *extra: str) -> list[str]:
    return ["--run_dir", str(run), "--data.train", str(data), "--data.val_fraction", "0.1",
            "--data.batch_size", "10", "--data.cutoff", "4.0", "--model.model", "equivariant_small",
            "--model.model_options", '{"channels": 8}', "--model.lr", "0.01", "--trainer.accelerator", "cpu",
            "--trainer.devices", "1", "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary",
            "false", *extra]


def _metrics(run: Path) -> list[dict]:
    return list(csv.DictReader(open(run / "metrics.csv")))


@pytest.mark.parametrize("preset, options", [
    ("equivariant_small", {"channels": 8, "radial": "spline"}),
    ("equivariant_small", {"channels": 8, "radial": "mlp"}),
    ("transformer_small", {"dim": 32, "num_layers": 2}),
], ids=["equivariant-spline", "equivariant-mlp", "transformer"])
def test_training_lowers_errors_and_writes_run_folder(preset, options, data_dir, tmp_path):
    run = tmp_path / "run"
    main(_args(run, data_dir / "rmd17_aspirin_train200.npz", "--trainer.max_epochs", "4", "--data.batch_size", "4",
               "--model.model", preset, "--model.model_options", json.dumps(options)))
    for name in ("model.mlip", "config.yaml", "metrics.csv", "learning_curves.png", "parity_val.png",
                 "checkpoints/last.ckpt", "checkpoints/best.ckpt", "data/train/manifest.json"):
        assert (run / name).exists(), name
    maes = [float(r["val_forces_mae"]) for r in _metrics(run) if r.get("val_forces_mae")]
    assert len(maes) == 4 and all(b < a for a, b in zip(maes, maes[1:])) and maes[-1] < 0.85 * maes[0]
    model = mlip.export.load(run / "model.mlip")
    assert options.items() <= model.config["network"].items() and model.atomic_numbers == [1, 6, 8]
    assert "val_forces_mae" in model.metadata["val_metrics"]
    losses = [float(r["val_loss"]) for r in _metrics(run) if r.get("val_loss")]
    exported = model.metadata["exported"]                    # the lowest validation loss, as MACE exports
    assert exported["weights"] == "lowest validation loss" and exported["epoch"] == losses.index(min(losses))
    assert exported["val_loss"] == pytest.approx(min(losses), rel=1e-6)
    # the EMA weights of that epoch: the best checkpoint (Lightning's, same monitor) holds exactly those
    best = torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    saved = {k.removeprefix("potential."): v for k, v in best.items() if k.startswith("potential.")}
    assert len(saved.keys() & model.state_dict().keys()) > 10
    for key, value in model.state_dict().items():
        if key in saved:
            assert torch.equal(value.to(saved[key].dtype), saved[key]), key


class _Module(torch.nn.Module):
    """What BestValidationWeights reads of a LightningModule: the potential and the loss weights."""

    def __init__(self):
        super().__init__()
        self.potential = torch.nn.Linear(2, 1)
        self.weights = "stage 1"


class _Trainer:
    sanity_checking = False

    def __init__(self):
        self.callback_metrics, self.current_epoch = {}, 0


def test_best_validation_weights_follow_the_lowest_loss_within_a_stage():
    from mlip.train.callbacks import BestValidationWeights

    best, module, trainer = BestValidationWeights(), _Module(), _Trainer()
    for epoch, loss in enumerate([3.0, 1.0, 2.0]):
        with torch.no_grad():
            module.potential.weight.fill_(epoch)
        trainer.current_epoch, trainer.callback_metrics = epoch, {"val_loss": torch.tensor(loss)}
        best.on_validation_epoch_end(trainer, module)
    assert best.epoch == 1 and torch.equal(best.weights["weight"], torch.ones(1, 2))
    restored = BestValidationWeights()
    restored.load_state_dict(best.state_dict())                  # kept in checkpoints for resumed runs
    assert restored.epoch == 1 and torch.equal(restored.weights["weight"], best.weights["weight"])
    module.weights = "stage 2"                                   # the late energy weight: losses not comparable
    trainer.current_epoch, trainer.callback_metrics = 3, {"val_loss": torch.tensor(5.0)}
    best.on_validation_epoch_end(trainer, module)
    assert best.epoch == 3 and best.loss == 5.0


def test_an_early_export_whose_force_error_was_left_far_behind_is_reported():
    """One extrapolated atom can keep the squared-error loss lowest at an early epoch while the force MAE
    keeps falling (EMT alloy, 2026-12-07: epoch 7 of 167 exported, 43.0 against 19.6 meV/Å): the run says so."""
    from mlip.train.callbacks import BestValidationWeights

    best, module, trainer = BestValidationWeights(), _Module(), _Trainer()
    for epoch, (loss, forces) in enumerate([(9.0, 60.0), (7.8, 43.0), (10.5, 19.6)]):
        trainer.current_epoch = epoch
        trainer.callback_metrics = {"val_loss": torch.tensor(loss), "val_forces_mae": torch.tensor(forces)}
        best.on_validation_epoch_end(trainer, module)
    assert best.epoch == 1 and best.forces_mae == pytest.approx(43.0)
    warning = best.outlier_warning(19.6, 2)
    assert warning is not None and "epoch 1" in warning and "43 -> 19.6" in warning and "--export_weights last" in warning
    assert best.outlier_warning(40.0, 2) is None    # within a fifth: nothing to say
    assert best.outlier_warning(19.6, 1) is None    # the exported epoch is the last
    old = BestValidationWeights()
    old.load_state_dict({k: v for k, v in best.state_dict().items() if k != "forces_mae"})  # an older checkpoint
    assert old.outlier_warning(19.6, 2) is None


def _command(run: Path, data: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mlip.train.cli", *_args(run, data, *extra)]


def test_killed_training_resumes_from_last_checkpoint(data_dir, tmp_path):
    run = tmp_path / "run"
    command = _command(run, data_dir / "rmd17_aspirin_train200.npz", "--trainer.max_epochs", "4",
                       "--checkpoint_every_n_steps", "4")
    last = run / "checkpoints" / "last.ckpt"
    process = subprocess.Popen(command, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    step = 0
    while time.time() < deadline and process.poll() is None:
        if last.exists():
            try:
                step = torch.load(last, weights_only=False, map_location="cpu")["global_step"]
            except Exception:  # being replaced right now
                step = 0
            if step >= 8:
                break
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert 8 <= step < 72, "training ended before it could be killed"
    assert not (run / "model.mlip").exists()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming from" in result.stdout
    final = torch.load(last, weights_only=False, map_location="cpu")
    assert final["global_step"] == 72 and final["epoch"] >= 3  # 18 steps per epoch, 4 epochs: nothing redone twice
    assert (run / "model.mlip").exists()


def test_ddp_on_two_cpu_processes(data_dir, tmp_path):
    run, probe = tmp_path / "run", tmp_path / "probe"
    command = _command(run, data_dir / "rmd17_aspirin_train200.npz", "--trainer.max_epochs", "2",
                       "--trainer.devices", "2", "--trainer.strategy", "ddp",
                       "--trainer.callbacks+=tests.ddp_probe.RankProbe", f"--trainer.callbacks.out_dir={probe}")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((probe / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world_size"] == 2 for r in ranks)
    for epoch in ("0", "1"):  # 180 training frames: 90 a rank an epoch, no frame on both ranks
        seen = [r["energies"][epoch] for r in ranks]
        assert len(seen[0]) == len(seen[1]) == 90 and not set(seen[0]) & set(seen[1])
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]


def test_float16_precision_is_refused(data_dir, tmp_path, capsys):
    with pytest.raises(SystemExit, match="2"):
        main(_args(tmp_path / "run", data_dir / "rmd17_aspirin_train200.npz", "--trainer.max_epochs", "1",
                   "--trainer.precision", "16-mixed"))
    error = capsys.readouterr().err
    assert error.strip().splitlines()[-1].startswith("mlip-train: error:") and "float16 autograd of forces" in error
    assert "Traceback" not in error


def test_cutoff_disagreeing_with_the_shards_is_refused(data_dir, tmp_path, capsys):
    from mlip.data.preprocess import preprocess

    preprocess([data_dir / "rmd17_aspirin_train200.npz"], tmp_path / "shards", cutoff=4.0, workers=1, progress=False)
    with pytest.raises(SystemExit, match="2"):
        main(_args(tmp_path / "run", tmp_path / "shards", "--data.cutoff", "5.0", "--trainer.max_epochs", "1"))
    error = capsys.readouterr().err
    assert "data.cutoff is 5.0 Å but the shards" in error and "4.0 Å" in error


def test_data_without_labels_the_loss_uses_is_refused_saying_how_to_name_them(tmp_path, capsys):
    from tests.test_cli_preprocess import _mace_style_file

    with pytest.raises(SystemExit, match="2"):
        main(_args(tmp_path / "run", _mace_style_file(tmp_path), "--trainer.max_epochs", "1"))
    error = capsys.readouterr().err
    assert error.strip().splitlines()[-1].startswith("mlip-train: error:") and "Traceback" not in error
    assert "has no label the loss uses" in error and "--data.energy_key REF_energy" in error


def test_weight_decay_spares_the_energy_scale_and_shift():
    """The network's weights decay; the potential's scale and shift (eV) are not pulled towards zero."""
    from mlip.models import build_potential
    from mlip.train.module import PotentialModule

    module = PotentialModule(model="equivariant_small", optimizer="adamw", weight_decay=0.1, scheduler="none")
    module.potential = build_potential("equivariant", ["Si"], 4.0, channels=4, lmax=1, scale=2.0, shift=-3.0,
                                       learn_scale_shift=True)
    optimizer = module.configure_optimizers()["optimizer"]
    decayed, kept = optimizer.param_groups
    assert decayed["weight_decay"] == 0.1 and kept["weight_decay"] == 0.0
    by_id = {id(p): name for name, p in module.named_parameters()}
    assert {by_id[id(p)] for p in kept["params"]} == {"potential.scale", "potential.shift"}
    assert all(by_id[id(p)].startswith("potential.network.") for p in decayed["params"])
    # with zero gradients, one AdamW step shrinks only the network's weights
    before = {name: p.detach().clone() for name, p in module.named_parameters()}
    for p in module.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    after = dict(module.named_parameters())
    assert torch.equal(after["potential.scale"], before["potential.scale"])
    assert torch.equal(after["potential.shift"], before["potential.shift"])
    weight = "potential.network.embedding.weight"
    assert torch.allclose(after[weight], before[weight] * (1 - module.hparams.lr * 0.1))


def test_a_run_stopped_before_its_first_validation_says_so_and_exports_its_final_weights(data_dir, tmp_path, capsys,
                                                                                         caplog):
    run = tmp_path / "run"  # 180 training frames in batches of 10: 18 steps per epoch, stopped after 5
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        args = _args(run, data_dir / "rmd17_aspirin_train200.npz", "--trainer.max_steps", "5")
        summary = args.index("--trainer.enable_model_summary")
        main(args[:summary] + args[summary + 2:])  # the default, which a user sees
    captured = capsys.readouterr()
    out = captured.out
    assert "no validation epoch completed (training stopped after 5 steps" in out and "validation MAE:" in out
    # one line on the model instead of Lightning's summary table (whose FLOPs column reads 0)
    logged = out + captured.err + caplog.text
    assert re.search(r"built \S+ \(equivariant\): [\d,]+ trainable parameters, float32, elements H C O, cutoff 4 Å",
                     logged)
    assert "FLOPs" not in logged
    assert not any("could not find the monitored key" in str(w.message) for w in caught)
    model = mlip.export.load(run / "model.mlip")
    assert model is not None
