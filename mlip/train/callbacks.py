"""Training callbacks: atomic checkpoints, one log line per epoch, the final model file, plots."""

from __future__ import annotations

import copy
import itertools
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks.weight_averaging import EMAWeightAveraging

from mlip.evaluate.errors import evaluate_potential
from mlip.evaluate.plots import learning_curves, parity
from mlip.export import save
from mlip.train.run_folder import merge_metrics


class BestValidationWeights(pl.Callback):
    """Keeps a copy of the potential's weights from the epoch with the lowest validation loss so far
    (the EMA weights when EMA is on: listed before the averaging callback, it runs while they are
    swapped in), for `FinalizeRun` to export, as MACE exports its best-validation checkpoint and
    NequIP its best model. The record restarts when the loss changes definition (the late energy
    weight: MACE's second stage restarts its record the same way), so the exported model comes from
    the last stage. Saved in checkpoints, so a resumed run keeps it."""

    def __init__(self) -> None:
        self.weights: dict[str, torch.Tensor] | None = None
        self.loss, self.epoch, self.stage = float("inf"), -1, None
        self.forces_mae: float | None = None  # meV/Å at that epoch, to compare with later epochs

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loss = trainer.callback_metrics.get("val_loss")
        if trainer.sanity_checking or loss is None:
            return
        stage = repr(getattr(pl_module, "weights", None))  # the loss weights define what val_loss measures
        if stage != self.stage:
            self.weights, self.loss, self.stage = None, float("inf"), stage
        if float(loss) < self.loss:
            self.loss, self.epoch = float(loss), trainer.current_epoch
            self.weights = {k: v.detach().clone() for k, v in pl_module.potential.state_dict().items()}
            forces = trainer.callback_metrics.get("val_forces_mae")
            self.forces_mae = None if forces is None else float(forces)

    def outlier_warning(self, final_forces_mae: float | None, final_epoch: int) -> str | None:
        """A line for the user when the exported epoch is not the best in force MAE by far: the validation
        force MAE (meV/Å) fell by more than a fifth after the epoch of lowest validation loss. The loss is a
        mean of squares, so a few large errors (e.g. one extrapolated close contact) can rule it while the
        rest of the set keeps improving; the user should know which weights model.mlip holds."""
        if self.forces_mae is None or final_forces_mae is None or self.epoch >= final_epoch:
            return None
        if final_forces_mae >= 0.8 * self.forces_mae:
            return None
        return (f"note: model.mlip has epoch {self.epoch}'s weights (lowest validation loss), but the validation "
                f"force MAE fell after it, {self.forces_mae:.3g} -> {final_forces_mae:.3g} meV/Å by epoch "
                f"{final_epoch}: a few large errors rule the squared-error loss (see the largest force errors "
                f"of `mlip-eval MODEL VALIDATION_DATA`); --export_weights last exports the final weights")

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.weights, "loss": self.loss, "epoch": self.epoch, "stage": self.stage,
                "forces_mae": self.forces_mae}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.weights, self.loss = state_dict["weights"], state_dict["loss"]
        self.epoch, self.stage = state_dict["epoch"], state_dict["stage"]
        self.forces_mae = state_dict.get("forces_mae")  # absent from checkpoints written before 2026-12-07


class FinalizeRun(pl.Callback):
    """At the end of fitting (weights already EMA-averaged): write `model.mlip` (the weights of the
    best validation epoch when `best` is given and has them, else the final ones), the learning
    curves and parity plots of the validation set into the run folder, and say where they are."""

    def __init__(self, run_dir: str | Path, best: BestValidationWeights | None = None):
        self.run_dir = Path(run_dir)
        self.best = best
        self.outputs: dict[str, Path] = {}

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        potential = pl_module.potential
        exported = {"weights": "final", "epoch": trainer.current_epoch}
        if self.best is not None and self.best.epoch < 0:  # nothing validated: the final weights are exported
            print(f"no validation epoch completed (training stopped after {trainer.global_step} steps, before the "
                  f"first epoch's end): model.mlip has the final weights; train for at least one epoch to export "
                  f"the best-validation ones")
        if self.best is not None and self.best.weights is not None:
            potential = copy.deepcopy(potential)
            potential.load_state_dict(self.best.weights)
            exported = {"weights": "lowest validation loss", "epoch": self.best.epoch, "val_loss": self.best.loss}
            final_forces = trainer.callback_metrics.get("val_forces_mae")
            warning = self.best.outlier_warning(None if final_forces is None else float(final_forces),
                                                trainer.current_epoch)
            if warning:
                print(warning, flush=True)
        metadata = {"train_data": str(trainer.datamodule.train_dir), "epochs": trainer.current_epoch,
                    "global_step": trainer.global_step, "exported": exported,
                    "val_metrics": {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val_")}}
        self.outputs["model"] = save(potential, self.run_dir / "model.mlip", metadata)
        curves = learning_curves(merge_metrics(self.run_dir), self.run_dir / "learning_curves.png")
        if curves:
            self.outputs["learning_curves"] = curves
        stress = pl_module.weights.stress > 0
        labels, predictions, summary = evaluate_potential(potential, trainer.datamodule.val_dataloader(whole=True),
                                                          stress=stress, device=pl_module.device)
        self.outputs["parity"] = parity(labels, predictions, self.run_dir / "parity_val.png", "validation set")
        lines = [f"{name}: {path}" for name, path in self.outputs.items()]
        print("\nvalidation MAE: " + ", ".join(f"{name} {summary[key]:.3g} {unit}" for key, name, unit in SUMMARY_MAES
                                               if key in summary)
              + "\n" + "\n".join(lines)
              + f"\nnext: mlip-eval {self.outputs['model']} TEST_DATA  (errors and parity plots on held-out data)")


# the validation errors printed at the end of a run: (summary key, name, unit)
SUMMARY_MAES = (("energy_mae", "energy", "meV"), ("energy_per_atom_mae", "energy per atom", "meV/atom"),
                ("forces_mae", "forces", "meV/Å"), ("stress_mae", "stress", "meV/Å³"))


class EpochLog(pl.Callback):
    """One readable line per epoch (after validation) on stdout and appended to RUN_DIR/train.log:

        epoch 12  step 2400  95 s  lr 1.0e-02  train loss 0.0123  val E 5.1 meV/atom  F 134 meV/Å
    """

    COLUMNS = (("val_energy_mae", "val E", "meV/atom"), ("val_forces_mae", "F", "meV/Å"),
               ("val_stress_mae", "S", "meV/Å³"))

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / "train.log"
        self.start = time.perf_counter()

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        parts = [f"epoch {trainer.current_epoch}", f"step {trainer.global_step}",
                 f"{time.perf_counter() - self.start:.0f} s"]
        if trainer.optimizers:
            parts.append(f"lr {trainer.optimizers[0].param_groups[0]['lr']:.1e}")
        for key, label in (("train_loss_epoch", "train loss"), ("val_loss", "val loss")):
            if key in metrics:
                parts.append(f"{label} {float(metrics[key]):.4g}")
        parts += [f"{label} {float(metrics[key]):.3g} {unit}" for key, label, unit in self.COLUMNS if key in metrics]
        line = "  ".join(parts)
        print(line, flush=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as log:
            log.write(line + "\n")


def warmed_up_ema(decay: float) -> Callable[[list[torch.Tensor], list[torch.Tensor], torch.Tensor], None]:
    """EMA update, in place on every averaged tensor at once, whose decay warms up as
    min(decay, (1 + n) / (10 + n)) over the n updates so far (`AveragedModel`'s `multi_avg_fn`).

    With a fixed decay d the average keeps weight d^n on the first steps' weights: at d = 0.99 a
    dataset of 175 structures in batches of 5 (35 steps per epoch) validates and exports weights
    that are still 70 % the first step's after one epoch and 17 % after five. The warm-up (as
    torch_ema's `use_num_updates`, which MACE uses) tracks the model early and reaches d after
    ~10 / (1 − d) updates (~900 at 0.99). One `torch._foreach_lerp_` over all tensors: a Python
    update per tensor cost ~5 ms of every training step of the small transformer (~60 ms)."""

    @torch.no_grad()
    def update(averages: list[torch.Tensor], currents: list[torch.Tensor], updates: torch.Tensor) -> None:
        n = updates.to(averages[0].dtype)  # a tensor on the parameters' device: no host sync per step
        rate = ((1.0 + n) / (10.0 + n)).clamp(max=decay)
        torch._foreach_lerp_(averages, currents, 1.0 - rate)  # rate · average + (1 − rate) · current

    return update


class NamedEMAWeightAveraging(EMAWeightAveraging):
    """Lightning's EMA of the weights, pairing the averaged and current tensors by name.

    Lightning pairs them by position in parameters() + buffers(). The averaged copy is a
    deepcopy, and a deepcopy of e3nn's compiled tensor products (torch.fx) lists their
    Clebsch-Gordan constants as extra buffers, which shifts every later pair and fails (or,
    worse, copies the wrong tensors). Only parameters are averaged (`use_buffers=False`: mlip's
    buffers are constants), and swaps pair tensors by name, which is exact.
    """

    def __init__(self, decay: float = 0.999, **kwargs: Any):
        kwargs.setdefault("use_buffers", False)
        super().__init__(decay=decay, **kwargs)
        # replaces Lightning's fixed-decay average, one tensor at a time, by the warmed-up one over all at once
        self._kwargs.update(avg_fn=None, multi_avg_fn=warmed_up_ema(decay))

    def _pairs(self, pl_module: "pl.LightningModule") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        averaged = self._average_model.module
        mine = dict(itertools.chain(averaged.named_parameters(), averaged.named_buffers()))
        for name, current in itertools.chain(pl_module.named_parameters(), pl_module.named_buffers()):
            if name in mine:
                yield mine[name], current

    def _swap_models(self, pl_module: "pl.LightningModule") -> None:
        for average, current in self._pairs(pl_module):
            saved = average.data.clone()
            average.data.copy_(current.data)
            current.data.copy_(saved)

    def _copy_average_to_current(self, pl_module: "pl.LightningModule") -> None:
        for average, current in self._pairs(pl_module):
            current.data.copy_(average.data)
