"""The prepared GPU check (`benchmarks/cuda_check.py`) runs its CPU-cheap sections on a CPU: the float64
device-against-CPU comparison and the rotation check come out exact there."""

from __future__ import annotations

import torch

from benchmarks.cuda_check import agreement, timed_median


def test_agreement_section_is_exact_on_the_cpu_and_checks_a_rotation():
    result = agreement(torch.device("cpu"))
    assert result["energy_max_abs_diff_eV"] == 0.0 and result["forces_max_abs_diff_eV_A"] == 0.0
    assert result["stress_max_abs_diff_eV_A3"] == 0.0
    assert 0.0 <= result["rotated_energy_max_abs_diff_eV"] < 1e-9
    assert 0.0 < result["rotated_forces_max_abs_diff_eV_A"] < 1e-9  # a real rotation: round-off, not identity


def test_timed_median_counts_only_the_timed_calls():
    calls = []
    seconds = timed_median(lambda: calls.append(1), torch.device("cpu"), repeats=5)
    assert len(calls) == 7 and seconds >= 0.0
