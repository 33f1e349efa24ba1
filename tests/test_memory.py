"""The kept-memory policy (`mlip.memory`): large blocks are reused, not mapped and zeroed again."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

# In a fresh process (the policy is process-wide): a step that allocates and frees 96 MiB in three
# blocks, as a model call does, repeated; the page faults of steps 11-20 are counted. Fresh mmap
# blocks every time cost ~24,000 faults a step (one per 4 KiB page); with freed memory kept the
# heap settles within a few steps (glibc's aligned blocks fragment it at first) and then reuses it.
PROBE = """
import json, resource, sys, torch
from mlip.memory import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "on" else False
def step():
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    large, small = torch.ones(16 * 1024 * 1024), torch.ones(4 * 1024 * 1024)  # 64 + 16 MiB, written
    product = large[:small.numel()] * small                                      # 16 MiB
    del large, small, product
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start
for _ in range(10):
    step()
print(json.dumps({"applied": applied, "faults": sum(step() for _ in range(10))}))
"""

glibc_only = pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                                reason="the policy sets glibc's malloc options")


def probe(mode: str, **env: str) -> dict:
    inherited = {k: v for k, v in os.environ.items() if k != "MLIP_KEEP_FREED_MEMORY"}
    result = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                            env={**inherited, **env}, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


@glibc_only
def test_kept_memory_reuses_large_blocks_without_new_page_faults():
    kept, default = probe("on"), probe("off")
    assert kept["applied"] is True
    assert default["faults"] > 100_000  # the C library's default: fresh mappings every step
    assert kept["faults"] < default["faults"] / 10


@glibc_only
def test_kept_memory_can_be_turned_off_by_the_environment():
    turned_off = probe("on", MLIP_KEEP_FREED_MEMORY="0")
    assert turned_off["applied"] is False
    assert turned_off["faults"] > 100_000


def test_loading_a_model_applies_the_policy(tmp_path, monkeypatch):
    import torch

    from mlip import memory
    from mlip.export import load, save
    from mlip.models import build_potential

    potential = build_potential(architecture="equivariant", elements=[1, 8], cutoff=3.0, channels=4, lmax=1,
                                num_layers=1, dtype=torch.float64)
    save(potential, tmp_path / "m.mlip")
    monkeypatch.setattr(memory, "_applied", False)  # as in a fresh process (setting it again is harmless)
    load(tmp_path / "m.mlip")
    expected = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc" \
        and os.environ.get("MLIP_KEEP_FREED_MEMORY", "1") != "0"
    assert memory._applied is expected
