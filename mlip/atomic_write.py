"""One way to write a file so that readers never see it half-written: a temporary file beside it,
renamed into place only when complete (and removed if writing fails)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

TMP_MARK = ".tmp."  # temporary names are NAME.tmp.PID; a crashed writer's leftovers can be found by it


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on normal exit it replaces `path`, on error it is deleted.

        with atomic_path("out/model.mlip") as tmp:
            write_everything_to(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}{TMP_MARK}{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` through `atomic_path`, flushed to disk; a full disk (or a file-size
    limit) raises an `OSError` that names the file, and nothing is left at `path`."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write {path} ({exc.strerror}; is the disk full?)") from None
