"""Build a shipped C kernel for one shape on first use and load it (ctypes), cached on disk.

Sizes and per-shape tables are compile-time constants (`-D` flags), so every loop of a kernel has a constant trip
count and the compiler unrolls and vectorises it, as Inductor specialises its own C++ kernels. Built with the C
compiler Inductor uses (`$CC`, else `cc`), `-O3 -march=native -fopenmp`, into Inductor's cache directory: one
file per source, shape and machine, written atomically under a file lock (concurrent processes build it once).
Without a compiler, or when the build fails, `build` returns None and logs why; callers keep a framework path.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from functools import lru_cache
from importlib import resources
from pathlib import Path

from filelock import FileLock

logger = logging.getLogger(__name__)

FLAGS = ["-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=c11"]


def compiler() -> str | None:
    """The C compiler's path: $CC, else cc, gcc or clang on the PATH; None if there is none."""
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def cache_folder() -> Path:
    """Where built kernels are kept: beside Inductor's own compiled code."""
    try:
        from torch._inductor.runtime.cache_dir_utils import cache_dir
        return Path(cache_dir()) / "mlip_kernels"
    except ImportError:  # pragma: no cover - older torch
        return Path(tempfile.gettempdir()) / "mlip_kernels"


def _cpu_model() -> str:
    """What -march=native compiles for: the CPU's model and flags lines (Linux) or the processor name."""
    try:
        return "\n".join(line for line in Path("/proc/cpuinfo").read_text().splitlines()[:40]
                         if line.startswith(("model name", "flags")))
    except OSError:
        return platform.processor()


@lru_cache(maxsize=None)
def build(source_name: str, defines: tuple[tuple[str, str], ...]) -> ctypes.CDLL | None:
    """`mlip/nn/kernels/<source_name>` built with `-D<name>=<value>` for each of `defines` and loaded; None (logged)
    where no compiler is found or the build fails."""
    try:
        source = resources.files("mlip.nn.kernels").joinpath(source_name).read_bytes()
    except OSError as error:  # an installation without the package data
        logger.warning("%s is missing from the installation (%s); the framework path runs instead", source_name, error)
        return None
    cc = compiler()
    if cc is None:
        logger.info("no C compiler found: %s is not built and the framework path runs instead", source_name)
        return None
    flags = [f"-D{name}={value}" for name, value in defines]
    key = hashlib.sha256(source + "\n".join([cc, *FLAGS, *flags, platform.machine(), _cpu_model()]).encode())
    folder = cache_folder()
    target = folder / f"{Path(source_name).stem}_{key.hexdigest()[:16]}.so"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target) + ".lock"):
            if not target.exists():
                with tempfile.TemporaryDirectory(dir=folder) as work:
                    source_file = Path(work) / source_name
                    source_file.write_bytes(source)
                    built = Path(work) / target.name
                    subprocess.run([cc, *FLAGS, *flags, str(source_file), "-o", str(built), "-lm"],
                                   check=True, capture_output=True, text=True)
                    os.replace(built, target)  # atomic: another process never loads half a library
        return ctypes.CDLL(str(target))
    except (OSError, subprocess.CalledProcessError) as error:
        detail = (getattr(error, "stderr", "") or str(error)).strip()
        logger.warning("%s did not build (%s); the framework path runs instead", source_name,
                       detail.splitlines()[-1] if detail else error)
        return None
