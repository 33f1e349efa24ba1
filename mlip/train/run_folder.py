"""The life of a run folder: start, resume, refuse to redo a finished run, keep the whole history.

    resume "auto"   continue from the newest intact checkpoint; a finished run (model.mlip written)
                    is left alone
    resume "never"  refuse a folder that already holds a run
    resume PATH     continue from that checkpoint
    overwrite       delete the previous run's files (not the preprocessed data) and start afresh

Resuming with a configuration that differs from the saved `config.yaml` (other than the length of
training and display options) is refused, naming the keys. Each resume keeps the metrics so far in
`metrics_part<N>.csv`, merged back into `metrics.csv` when the run finishes.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlip.train.checkpoints import intact_resume_checkpoint, verify_checkpoint

# keys that may change between a run and its resumption
MAY_CHANGE = ("trainer.max_epochs", "trainer.max_steps", "trainer.max_time", "trainer.enable_progress_bar",
              "trainer.enable_model_summary", "resume", "overwrite", "config", "checkpoint_every_n_steps")
RUN_FILES = ("model.mlip", "config.yaml", "metrics.csv", "train.log", "learning_curves.png", "parity_val.png")


@dataclass(frozen=True)
class RunPlan:
    """What to do with a run folder: `finished` (nothing), or train from `checkpoint` (None: from scratch)."""

    finished: bool
    checkpoint: Path | None
    note: str


def plan_run(run_dir: Path, resume: str, overwrite: bool, config: dict[str, Any]) -> RunPlan:
    """Decide without touching anything (every DDP rank computes the same plan). Raises ValueError on conflicts."""
    if overwrite:
        return RunPlan(False, None, f"--overwrite: starting {run_dir} afresh" if holds_run(run_dir) else "")
    if resume not in ("auto", "never"):
        path = Path(resume)
        if not path.is_file():
            raise ValueError(f"--resume {resume}: no such checkpoint")
        verify_checkpoint(path)
        _check_same_config(run_dir, config)
        return RunPlan(False, path, f"resuming from {path}")
    if resume == "never":
        if holds_run(run_dir):
            raise ValueError(f"{run_dir} already holds a run and --resume is never; choose another --run_dir, "
                             f"or pass --overwrite true to replace it")
        return RunPlan(False, None, "")
    if (run_dir / "model.mlip").exists():
        return RunPlan(True, None, f"{run_dir} holds a finished run ({run_dir / 'model.mlip'}); nothing to do. Pass "
                                   f"--overwrite true to retrain, or choose another --run_dir")
    checkpoint, note = intact_resume_checkpoint(run_dir)
    if checkpoint is not None:
        _check_same_config(run_dir, config)
    return RunPlan(False, checkpoint, note)


def prepare_run(run_dir: Path, plan: RunPlan, overwrite: bool) -> None:
    """Rank 0 only: clear an overwritten run; set the metrics so far aside before a resume."""
    if overwrite:
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
        for name in RUN_FILES:
            (run_dir / name).unlink(missing_ok=True)
        for part in run_dir.glob("metrics_part*.csv"):
            part.unlink()
    metrics = run_dir / "metrics.csv"
    if plan.checkpoint is not None and metrics.exists():  # Lightning's CSVLogger would start it afresh
        metrics.rename(run_dir / f"metrics_part{len(list(run_dir.glob('metrics_part*.csv'))):03d}.csv")


def holds_run(run_dir: Path) -> bool:
    return (run_dir / "model.mlip").exists() or any((run_dir / "checkpoints").glob("*.ckpt"))


def merge_metrics(run_dir: Path) -> Path:
    """Write the whole history (set-aside parts, then the current file) into RUN/metrics.csv; drop the parts."""
    parts = sorted(run_dir.glob("metrics_part*.csv")) + [run_dir / "metrics.csv"]
    rows: list[dict[str, str]] = []
    fields: list[str] = []
    for part in (p for p in parts if p.exists()):
        with open(part, newline="") as handle:
            reader = csv.DictReader(handle)
            fields += [f for f in reader.fieldnames or [] if f not in fields]
            rows += list(reader)
    if rows:
        with open(run_dir / "metrics.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    for part in parts[:-1]:
        part.unlink()
    return run_dir / "metrics.csv"


def _check_same_config(run_dir: Path, config: dict[str, Any]) -> None:
    saved = run_dir / "config.yaml"
    if not saved.exists():
        return
    before, now = _flatten(yaml.safe_load(saved.read_text()) or {}), _flatten(config)
    changed = sorted(k for k in set(before) | set(now)
                     if before.get(k) != now.get(k) and not any(k == m or k.startswith(m + ".") for m in MAY_CHANGE))
    if changed:
        details = ", ".join(f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in changed[:6])
        raise ValueError(f"resuming {run_dir} with a different configuration ({details}); use the same options, "
                         f"another --run_dir, or --overwrite true")


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat
