"""Benchmark systems shared by the speed benchmarks (plain ASE, importable from any environment)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk

DATA = Path(__file__).resolve().parents[1] / "data"


def aspirin() -> Atoms:
    """The first frame of rMD17 aspirin (shipped subset), no cell."""
    archive = np.load(DATA / "rmd17_aspirin_train200.npz")
    return Atoms(numbers=archive["nuclear_charges"], positions=archive["coords"][0])


def silicon(n_atoms: int) -> Atoms:
    """Diamond silicon, 5.43 Å cubic cell repeated to `n_atoms` (8 n³), rattled by 0.01 Å."""
    repeat = round((n_atoms / 8) ** (1 / 3))
    atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(repeat)
    atoms.rattle(0.01, seed=1)
    return atoms


def systems(sizes=(64, 512, 4096)) -> dict[str, Atoms]:
    out = {"aspirin": aspirin()}
    out.update({f"Si{n}": silicon(n) for n in sizes})
    return out


def thermalize(atoms: Atoms, temperature_K: float, rng: np.random.Generator) -> None:
    """Maxwell-Boltzmann momenta at `temperature_K` (K): ASE's `thermalize_momenta` (>= 3.28), else its
    former name `MaxwellBoltzmannDistribution` (the MACE venv may hold an older ASE)."""
    from ase.md import velocitydistribution

    draw = (getattr(velocitydistribution, "thermalize_momenta", None)
            or velocitydistribution.MaxwellBoltzmannDistribution)
    draw(atoms, temperature_K=temperature_K, rng=rng)


def median_call_seconds(call, n_atoms: int, warm: int = 2) -> float:
    """Median wall time of `call()` over max(3, min(30, 3000 / atoms)) timed calls after `warm` untimed ones."""
    import statistics
    import time

    repeats = max(3, min(30, 3000 // n_atoms))
    times = []
    for k in range(repeats + warm):
        start = time.perf_counter()
        call()
        if k >= warm:
            times.append(time.perf_counter() - start)
    return statistics.median(times)
