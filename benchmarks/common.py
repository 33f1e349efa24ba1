"""Helpers shared by the benchmark scripts: timing and result files with machine info."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    versions = {}
    for package in ("mlip", "torch", "numpy", "h5py", "vesin", "matscipy", "ase"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return {"host": platform.node(), "cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "versions": versions}


def best_time(function: Callable[[], Any], repeats: int = 5, min_seconds: float = 0.2) -> float:
    """Best wall time of one call over `repeats` timed rounds (each round loops until `min_seconds`)."""
    function()
    best = float("inf")
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while True:
            function()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        best = min(best, elapsed / calls)
    return best


def write_result(name: str, results: Any, out: str | Path | None = None) -> Path:
    path = Path(out) if out else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "command": " ".join([Path(sys.executable).name] + sys.argv),
               "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine(), "results": results}
    from mlip.atomic_write import write_bytes_atomic  # here: the MACE side imports this module without mlip

    write_bytes_atomic(path, (json.dumps(payload, indent=2) + "\n").encode())  # a stopped run never leaves half a file
    print(f"wrote {path}")
    return path


def lightning_max_time(minutes: float) -> str:
    """Lightning's `trainer.max_time` string (DD:HH:MM:SS) for a wall time in minutes."""
    seconds = int(round(minutes * 60))
    return f"{seconds // 86400:02d}:{seconds // 3600 % 24:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
