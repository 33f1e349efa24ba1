"""`mlip-train --config CONFIG.yaml [--section.option value ...]`: fit a potential.

Stages: parse and validate the YAML config (LightningCLI/jsonargparse: typed, `--help`,
command-line overrides, the resolved config saved as RUN_DIR/config.yaml) → data (shards, or
raw files preprocessed on the fly) → model (built from the data's manifest) → fit (resumes
from the newest intact checkpoint, see `mlip.train.run_folder`) → model file and plots.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import CSVLogger

from mlip.data.datamodule import ShardDataModule
from mlip.data.preprocess import PreprocessConflictError
from mlip.export import ModelFileError
from mlip.folder_lock import FolderInUseError, exclusive_folder
from mlip.io import InvalidStructureError
from mlip.memory import keep_freed_memory
from mlip.train.callbacks import BestValidationWeights, EpochLog, FinalizeRun, NamedEMAWeightAveraging
from mlip.train.checkpoints import AtomicCheckpointIO
from mlip.train.module import PotentialModule
from mlip.train.run_folder import plan_run, prepare_run
from mlip.version_flag import version_text


class TrainCLI(LightningCLI):
    """LightningCLI with mlip's run folder, checkpoints, EMA, early stopping and final export."""

    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.add_argument("--run_dir", default="runs/mlip", help="folder for checkpoints, logs, plots and model.mlip")
        parser.add_argument("--ema_decay", type=float, default=0.99,
                            help="EMA of weights for validation/export, its decay warming up as "
                                 "min(d, (1+n)/(10+n)) over the first n steps; 0: off")
        parser.add_argument("--checkpoint_every_n_steps", type=int, default=100,
                            help="also save last.ckpt every N optimizer steps (mid-epoch resume)")
        parser.add_argument("--early_stopping_patience", type=int, default=0, help="epochs without improvement; 0: off")
        parser.add_argument("--export_weights", choices=["best", "last"], default="best",
                            help="model.mlip gets the (EMA) weights of the epoch with the lowest validation loss "
                                 "(best, as MACE and NequIP export; within the last loss stage) or of the last epoch")
        parser.add_argument("--resume", default="auto",
                            help="auto: continue from the newest intact checkpoint in run_dir (a finished run is "
                                 "left alone); never: refuse a run_dir that holds a run; or a checkpoint path")
        parser.add_argument("--overwrite", type=bool, default=False,
                            help="delete run_dir's previous run (checkpoints, logs, model; not the preprocessed "
                                 "data) and train from scratch")
        parser.link_arguments("run_dir", "data.cache_dir", compute_fn=lambda run: str(Path(run) / "data"))
        # the model's one line (name, trainable parameters, dtype, elements, cutoff) is printed when it is built;
        # Lightning's table adds one row and a FLOPs column that reads 0 without an example input
        parser.set_defaults({"trainer.enable_model_summary": False})

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        config = self.config
        run = Path(config["run_dir"])
        best = BestValidationWeights() if config["export_weights"] == "best" else None
        callbacks = [
            ModelCheckpoint(dirpath=run / "checkpoints", filename="best", monitor="val_loss", save_top_k=1),
            ModelCheckpoint(dirpath=run / "checkpoints", save_top_k=0, save_last=True,
                            every_n_train_steps=config["checkpoint_every_n_steps"]),
            LearningRateMonitor(logging_interval="epoch"),
            FinalizeRun(run, best),
            EpochLog(run),
        ] + ([best] if best else [])  # before the EMA callback: it reads the averaged weights
        if config["ema_decay"] > 0:
            callbacks.append(NamedEMAWeightAveraging(decay=config["ema_decay"]))
        if config["early_stopping_patience"] > 0:
            callbacks.append(EarlyStopping("val_loss", patience=config["early_stopping_patience"]))
        configured = self.config_init["trainer"].get("callbacks") or []  # the user's own, kept
        kwargs["callbacks"] = list(configured if isinstance(configured, list) else [configured]) + callbacks
        kwargs["default_root_dir"] = str(run)
        if self.config_init["trainer"].get("enable_progress_bar") is None:
            kwargs["enable_progress_bar"] = sys.stdout.isatty()  # bars on a terminal only, not in log files
        kwargs["plugins"] = [AtomicCheckpointIO()]
        if config["trainer"].get("logger") in (None, True):  # keep a logger the user configured
            kwargs["logger"] = [CSVLogger(run, name="", version="")] + tensorboard_logger(run)
        return super().instantiate_trainer(**kwargs)


def tensorboard_logger(run: Path) -> list:
    """TensorBoard logs in RUN_DIR/tensorboard when tensorboard (or tensorboardX) is installed."""
    try:
        from lightning.pytorch.loggers import TensorBoardLogger

        return [TensorBoardLogger(run, name="tensorboard", version="")]
    except ModuleNotFoundError:
        return []


TRAINER_DEFAULTS = {
    "inference_mode": False,  # validation differentiates the energy for forces
    "use_distributed_sampler": False,  # ShardDataModule's sampler already splits ranks
    "max_epochs": 100,
    "gradient_clip_val": 10.0,
    "log_every_n_steps": 10,
}


# Known, harmless messages from dependencies that would bury the useful output of a run.
QUIET = (".*WeightAveraging callback with a model that overrides the configure_model.*",
         ".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*", ".*was deprecated in v4.49.0.*",
         ".*skip_none parameter was deprecated.*",
         # mlip sets a run's earlier metrics aside (metrics_part*.csv) and merges them at the end: nothing is lost
         ".*Experiment logs directory .* exists and is not empty.*",
         # small data: mlip's own per-epoch line reports every epoch whatever the step logging interval
         ".*is smaller than the logging interval.*",
         # a run that stops inside its first epoch never validates; FinalizeRun says so in one line and
         # still reports the validation errors of the weights it exports
         ".*ModelCheckpoint\\(monitor='val_loss'\\)` could not find the monitored key.*")


DESCRIPTION = ("mlip-train: fit an mlip potential (energies in eV, forces eV/Å, stress eV/Å³) to shard folders "
               "or structure files. Options come from --config YAML and the command line: model.* (preset, "
               "E0s, loss weights, optimiser), data.* (inputs, cutoff, batch size, reader keys), trainer.* (any "
               "Lightning Trainer option), run_dir, ema_decay. Rerun the same command to resume.")


class _NoAdverts(logging.Filter):
    """Drops Lightning's "💡 Tip" advertisement of a cloud logger from the run's output."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


BAD_INPUT = (InvalidStructureError, PreprocessConflictError, ModelFileError, FolderInUseError, ValueError,
             FileNotFoundError)


def _is_rank_zero() -> bool:
    """True unless this process is a non-zero rank of a distributed launch (torchrun, SLURM, Lightning)."""
    return all(os.environ.get(name, "0") == "0" for name in ("RANK", "LOCAL_RANK", "SLURM_PROCID"))


def main(argv: list[str] | None = None) -> None:
    if "--version" in (sys.argv[1:] if argv is None else argv):
        print(version_text("mlip-train"))
        return
    for pattern in QUIET:
        warnings.filterwarnings("ignore", message=pattern)
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_NoAdverts())
    keep_freed_memory()  # every step frees and reallocates the same large blocks (mlip.memory)
    try:
        cli = TrainCLI(PotentialModule, ShardDataModule, run=False, args=argv, trainer_defaults=TRAINER_DEFAULTS,
                       save_config_kwargs={"overwrite": True}, seed_everything_default=0, subclass_mode_model=False,
                       subclass_mode_data=False, auto_configure_optimizers=False,
                       parser_kwargs={"prog": "mlip-train", "description": DESCRIPTION})
        run_dir = Path(cli.config["run_dir"])
        # one training per run folder: rank 0 holds the lock (DDP ranks share the folder)
        lock = exclusive_folder(run_dir, "mlip-train") if _is_rank_zero() else nullcontext()
        with lock:
            config = yaml.safe_load(cli.parser.dump(cli.config, skip_none=False, skip_check=True))
            plan = plan_run(run_dir, cli.config["resume"], cli.config["overwrite"], config)
            if plan.note:
                print(plan.note)
            if plan.finished:
                return
            if _is_rank_zero():
                prepare_run(run_dir, plan, cli.config["overwrite"])
            cli.trainer.fit(cli.model, cli.datamodule, ckpt_path=str(plan.checkpoint) if plan.checkpoint else None)
    except BAD_INPUT as exc:  # the user's data or options: one line, no traceback
        print(f"mlip-train: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
