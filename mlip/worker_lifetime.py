"""Worker processes end when their parent dies (a killed `mlip-preprocess` or `mlip-train` must
not leave orphans computing or holding files)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def end_with_parent(parent_pid: int) -> None:
    """Call in a child process: it gets SIGTERM when its parent dies (Linux `prctl`), and exits
    at once if the parent is already gone (the race between fork and prctl). Elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: rely on the pools' own shutdown
            return
    if os.getppid() != parent_pid:
        os._exit(1)
