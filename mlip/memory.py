"""Process memory policy for CPU work: keep freed memory for reuse instead of handing it back.

glibc's malloc serves every block above 32 MiB (and above a sliding threshold below that) with a
fresh `mmap` and returns it to the kernel on `free`. A model's energy+forces call on a few
thousand atoms allocates and frees gigabytes of such blocks, so every call makes the kernel map
and zero the same memory again: on the 2-core benchmark machine the kernel's share (system time)
was 2.2–3.5 s of a 3–7 s call on 4,096 silicon atoms, and 12 % of a training run on mlearn Mo.
`keep_freed_memory` sets two glibc options (as the environment variables `MALLOC_MMAP_MAX_=0` and
a huge `MALLOC_TRIM_THRESHOLD_` would): large blocks come from the heap, and freed heap memory
stays with the process for the next call, as PyTorch's CUDA caching allocator does on GPUs.
The price: the process keeps its peak memory until it exits, and the heap fragments (PyTorch's
64-byte-aligned blocks leave small pieces between large ones): measured peak unchanged at 512 and
4,096 Si atoms, 1.5× higher at 32,768 (benchmarks/README.md "Per-atom cost and memory").

mlip applies it where its own long-running work starts (`mlip.export.model_file.load`, behind the
calculator, the CLIs and the torch-sim interface; `mlip-train`). `MLIP_KEEP_FREED_MEMORY=0` turns
it off. Other C libraries (musl, macOS) are left alone.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_MAX = -4
_applied = False


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory in the process (no mmap for large blocks, no trimming).

    Idempotent and process-wide. Returns True when the policy is in force, False where it does
    not apply (not glibc, or `MLIP_KEEP_FREED_MEMORY=0`).
    """
    global _applied
    if _applied:
        return True
    if os.environ.get("MLIP_KEEP_FREED_MEMORY", "1").strip() == "0":
        return False
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)  # the C library this process already runs on
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success; a trim threshold of -1 disables trimming (mallopt(3))
    _applied = mallopt(M_MMAP_MAX, 0) == 1 and mallopt(M_TRIM_THRESHOLD, -1) == 1
    return _applied
