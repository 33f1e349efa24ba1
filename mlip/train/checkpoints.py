"""Checkpoints written atomically with a content hash beside them, and the choice of the one to resume from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from mlip.atomic_write import atomic_path
from mlip.checksum import ChecksumError, file_sha256, verify_file


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file and renames it into place (an interrupted save
    never leaves a half-written checkpoint), with its SHA-256 in `NAME.sha256` beside it; loading
    checks that hash, so a corrupted checkpoint is refused, naming it.

    The checkpoint and its hash file are two renames: a kill between them must not make an intact
    checkpoint look corrupt (it did, under load: the new last.ckpt beside the old hash, and a resume
    from scratch). So the hash file first lists both the new and the current digest, then the
    checkpoint is renamed into place, then the hash file keeps the new digest only."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        recorded = checksum_path(path)
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)
            digest = file_sha256(tmp)
            current = recorded.read_text().split() if recorded.exists() and Path(path).exists() else []
            _write_digests(recorded, [digest, *current])
        _write_digests(recorded, [digest])

    def load_checkpoint(self, path: str | Path, *args: Any, **kwargs: Any) -> dict[str, Any]:
        verify_checkpoint(path)
        return super().load_checkpoint(path, *args, **kwargs)

    def remove_checkpoint(self, path: str | Path) -> None:
        super().remove_checkpoint(path)
        checksum_path(path).unlink(missing_ok=True)


def _write_digests(recorded: Path, digests: list[str]) -> None:
    with atomic_path(recorded) as tmp:
        tmp.write_text("".join(d + "\n" for d in dict.fromkeys(digests)))


def checksum_path(checkpoint: str | Path) -> Path:
    return Path(f"{checkpoint}.sha256")


def verify_checkpoint(path: str | Path) -> None:
    """Raise `ChecksumError` if `path` matches none of the hashes written beside it (none written:
    accepted; two while a save is being put in place, see `AtomicCheckpointIO`)."""
    recorded = checksum_path(path)
    if recorded.exists():
        verify_file(path, recorded.read_text().split(), "delete it to start over or resume from another checkpoint")


def intact_resume_checkpoint(run_dir: Path) -> tuple[Path | None, str]:
    """The checkpoint to resume from: last.ckpt if intact, else the newest intact one, with a note on the choice."""
    folder = run_dir / "checkpoints"
    candidates = sorted(folder.glob("*.ckpt"), key=lambda p: (p.name != "last.ckpt", -p.stat().st_mtime))
    skipped = []
    for path in candidates:
        try:
            verify_checkpoint(path)
        except ChecksumError:
            skipped.append(path.name)
            continue
        note = f"resuming from {path}" + (f" ({', '.join(skipped)} corrupt: skipped)" if skipped else "")
        return path, note
    return None, (f"no intact checkpoint in {folder} ({', '.join(skipped)} corrupt): starting from scratch"
                  if skipped else "")
