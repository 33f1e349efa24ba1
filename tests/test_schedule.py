"""The budget learning-rate schedule: where training stands in its budget, the cosine, and a run."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from lightning.pytorch.callbacks import Timer

from mlip.train.cli import main
from mlip.train.schedule import budget_fraction, cosine_factor
from tests.test_train import _args


def _trainer(**kwargs) -> SimpleNamespace:
    defaults = {"max_steps": -1, "max_epochs": None, "global_step": 0, "current_epoch": 0,
                "num_training_batches": 10, "callbacks": []}
    return SimpleNamespace(**{**defaults, **kwargs})


def test_budget_fraction_takes_the_limit_that_ends_first():
    assert budget_fraction(_trainer()) is None  # no limit: nothing to schedule against
    assert budget_fraction(_trainer(max_steps=200, global_step=50)) == pytest.approx(0.25)
    assert budget_fraction(_trainer(max_epochs=4, current_epoch=1), batch_idx=5) == pytest.approx(1.5 / 4)
    assert budget_fraction(_trainer(max_steps=100, global_step=90, max_epochs=10, current_epoch=1)) == pytest.approx(0.9)
    timer = Timer(duration={"seconds": 100})
    timer.time_elapsed = lambda stage="train": 25.0  # a quarter of the wall time spent
    assert budget_fraction(_trainer(max_epochs=100000, callbacks=[timer])) == pytest.approx(0.25, abs=1e-4)
    assert budget_fraction(_trainer(max_steps=10, global_step=30)) == 1.0  # clipped


def test_cosine_factor_runs_from_one_to_the_final_factor():
    assert cosine_factor(0.0, 0.01) == 1.0 and cosine_factor(1.0, 0.01) == pytest.approx(0.01)
    assert cosine_factor(0.5, 0.0) == pytest.approx(0.5)
    values = [cosine_factor(f / 10, 0.05) for f in range(11)]
    assert all(b < a for a, b in zip(values, values[1:]))


def test_a_late_decay_keeps_the_lr_until_its_start():
    assert [cosine_factor(f, 0.02, start=0.6) for f in (0.0, 0.3, 0.6)] == [1.0, 1.0, 1.0]
    assert cosine_factor(0.8, 0.02, start=0.6) == pytest.approx(cosine_factor(0.5, 0.02))  # halfway through the decay
    assert cosine_factor(1.0, 0.02, start=0.6) == pytest.approx(0.02)
    with pytest.raises(ValueError, match="within the budget"):
        cosine_factor(0.5, 0.02, start=1.0)


def test_budget_schedule_decays_lr_over_max_epochs(data_dir, tmp_path):
    run = tmp_path / "run"
    main(_args(run, data_dir / "rmd17_aspirin_train200.npz", "--trainer.max_epochs", "3",
               "--model.scheduler", "budget", "--model.lr_final_factor", "0.01",
               "--model.late_energy_weight", "10", "--model.late_start_fraction", "0.5"))
    lrs = [float(m) for m in re.findall(r"lr ([0-9.e+-]+)", (run / "train.log").read_text())]
    assert len(lrs) == 3 and all(b < a for a, b in zip(lrs, lrs[1:]))
    assert lrs[0] > 0.005 and lrs[-1] < 0.001  # cosine from 0.01 towards 1e-4 at the end of epoch 3


def test_budget_schedule_without_a_budget_is_refused(data_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(_args(tmp_path / "run", data_dir / "rmd17_aspirin_train200.npz", "--trainer.max_epochs", "-1",
                   "--model.scheduler", "budget"))
    assert exit_info.value.code == 2 and "needs a budget" in capsys.readouterr().err


def test_weight_average_warms_up_and_forgets_the_initial_weights():
    """The EMA of the weights (validation and export) follows the model early, as torch_ema's
    use_num_updates: after 35 steps (one epoch of 175 structures in batches of 5) the initial
    weights keep < 1 % of the average, where a fixed decay of 0.99 would keep 70 %."""
    import torch
    from torch.optim.swa_utils import AveragedModel

    from mlip.train.callbacks import NamedEMAWeightAveraging, warmed_up_ema

    model = torch.nn.Linear(1, 1, bias=False)
    model.weight.data.fill_(1.0)
    averaged = AveragedModel(model, multi_avg_fn=warmed_up_ema(0.99), use_buffers=False)
    averaged.update_parameters(model)  # the first update copies the weights
    model.weight.data.fill_(0.0)  # the model moves away from its start and stays
    for _ in range(35):
        averaged.update_parameters(model)
    kept = float(averaged.module.weight)
    assert 0 < kept < 0.01
    assert kept < 0.99 ** 35 / 50
    average = [torch.ones(1, dtype=torch.float64)]
    warmed_up_ema(0.99)(average, [torch.zeros(1, dtype=torch.float64)], torch.tensor(5000))
    assert float(average[0]) == pytest.approx(0.99, abs=1e-12)  # the nominal decay once warmed up
    assert NamedEMAWeightAveraging(decay=0.99)._kwargs["multi_avg_fn"] is not None
