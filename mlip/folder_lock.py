"""Exclusive output folders: one writer at a time (preprocessing, training, relaxation runs).

The lock is an OS file lock (filelock: fcntl on POSIX, msvcrt on Windows) on `FOLDER/.mlip.lock`,
so it is released by the kernel when its process ends, crashed or killed: a stale lock cannot
block a rerun. A second writer is refused at once with a one-line message.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

LOCK_NAME = ".mlip.lock"


class FolderInUseError(RuntimeError):
    """Another process writes to this folder."""


@contextmanager
def exclusive_folder(folder: str | Path, purpose: str) -> Iterator[Path]:
    """Hold the lock of `folder` (created if needed) for the duration; refuse at once if held elsewhere."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / LOCK_NAME)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise FolderInUseError(f"{folder} is in use by another process ({purpose}); wait for it to finish or "
                               f"choose another folder") from None
    try:
        yield folder
    finally:
        lock.release()


def remove_if_unused(folder: str | Path) -> bool:
    """Remove `folder` when it holds nothing but its lock file (a run refused before writing);
    True if removed. Anything else in it is left alone."""
    folder = Path(folder)
    try:
        entries = list(folder.iterdir())
        if any(entry.name != LOCK_NAME for entry in entries):
            return False
        for entry in entries:
            entry.unlink()
        folder.rmdir()
        return True
    except OSError:
        return False
