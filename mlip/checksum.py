"""Content hashes of the files mlip writes (shards, checkpoints, model weights), checked on read."""

from __future__ import annotations

import hashlib
from pathlib import Path


class ChecksumError(ValueError):
    """A file's content differs from the hash recorded when it was written: it is corrupt."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: str | Path, expected: str | list[str], remedy: str) -> None:
    """Raise `ChecksumError` naming `path` and what to do (`remedy`) unless its hash is `expected`
    (or one of them, given a list)."""
    if file_sha256(path) not in ([expected] if isinstance(expected, str) else expected):
        raise ChecksumError(f"{path} is corrupt (its content hash differs from the one recorded when it was "
                            f"written); {remedy}")
