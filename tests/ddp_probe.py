"""A callback for the DDP test: records the structures each rank trains on and its final weights."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import lightning.pytorch as pl


class RankProbe(pl.Callback):
    def __init__(self, out_dir: str):
        self.out_dir = Path(out_dir)
        self.energies: dict[int, list[float]] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.energies.setdefault(trainer.current_epoch, []).extend(float(e) for e in batch.energy)

    def on_train_end(self, trainer, pl_module) -> None:
        digest = hashlib.sha256()
        for name, tensor in sorted(pl_module.potential.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().numpy().tobytes())
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / f"rank{trainer.global_rank}.json").write_text(json.dumps(
            {"rank": trainer.global_rank, "world_size": trainer.world_size, "energies": self.energies,
             "weights_sha256": digest.hexdigest()}))
