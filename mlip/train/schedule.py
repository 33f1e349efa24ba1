"""Learning-rate schedules that know the training budget (steps, epochs or wall time)."""

from __future__ import annotations

import math
from typing import Any

from lightning.pytorch.callbacks import Timer


def budget_fraction(trainer: Any, batch_idx: int = 0) -> float | None:
    """How much of the training budget is spent, in [0, 1]: the largest of the step fraction
    (`max_steps`), the epoch fraction (`max_epochs`, counting batches within the epoch) and the
    wall-time fraction (`max_time`, validation included as Lightning counts it). None when no
    limit is set (then a budget schedule cannot know where it is)."""
    fractions = []
    if trainer.max_steps is not None and trainer.max_steps > 0:
        fractions.append(trainer.global_step / trainer.max_steps)
    if trainer.max_epochs is not None and trainer.max_epochs > 0:
        batches = trainer.num_training_batches
        within = batch_idx / batches if isinstance(batches, int) and batches > 0 else 0.0
        fractions.append((trainer.current_epoch + within) / trainer.max_epochs)
    for callback in trainer.callbacks:
        if isinstance(callback, Timer) and callback.time_remaining() is not None:
            elapsed = callback.time_elapsed()
            fractions.append(elapsed / max(elapsed + callback.time_remaining(), 1e-9))
    return min(max(fractions), 1.0) if fractions else None


def cosine_factor(fraction: float, final_factor: float, start: float = 0.0) -> float:
    """The lr multiplier: 1 until fraction `start` of the budget, then a cosine decay to
    `final_factor` at fraction 1 (start 0: decay from the first step; start 0.6: constant for
    60 % of the budget, then decay, a "warmup-stable-decay" schedule)."""
    if not 0.0 <= start < 1.0:
        raise ValueError(f"the decay must start within the budget (0 <= start < 1), got {start}")
    fraction = min(max((fraction - start) / (1.0 - start), 0.0), 1.0)
    return final_factor + (1.0 - final_factor) * 0.5 * (1.0 + math.cos(math.pi * fraction))
