"""The MD-stability criterion: broken bonds and collisions end a run, proton transfer does not."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from benchmarks.md_stability import BondWatch


def proton_between_oxygens(h_x: float) -> Atoms:
    """O at x = 0 and x = 2.6 Å (not bonded to each other), H on the axis at `h_x`, plus a C bonded to each O."""
    return Atoms("OHOCC", positions=[[0, 0, 0], [h_x, 0, 0], [2.6, 0, 0], [-1.3, 0.4, 0], [3.9, 0.4, 0]])


def test_proton_transfer_is_counted_not_a_failure():
    watch = BondWatch(proton_between_oxygens(0.97))
    moved = watch.check(proton_between_oxygens(2.6 - 0.97))
    assert moved["hydrogens_transferred"] == 1 and not moved["broken"]
    assert np.isclose(moved["max_bond_stretch"], 1.0)


def test_hydrogen_leaving_every_heavy_atom_breaks():
    watch = BondWatch(proton_between_oxygens(0.97))
    away = proton_between_oxygens(0.97)
    away.positions[1] = [1.3, 2.0, 0.0]  # 2.4 Å from both oxygens: 2.4 / 0.97 > 1.6
    state = watch.check(away)
    assert state["broken"] and state["max_bond_stretch"] > 1.6


def test_stretched_heavy_bond_and_collision_break():
    start = proton_between_oxygens(0.97)
    watch = BondWatch(start)
    stretched = start.copy()
    stretched.positions[3] = start.positions[0] + 1.7 * (start.positions[3] - start.positions[0])
    assert watch.check(stretched)["broken"]
    collided = start.copy()
    collided.positions[4] = collided.positions[2] + [0.5, 0.0, 0.0]
    state = watch.check(collided)
    assert state["broken"] and state["closest_pair_A"] < 0.6


def test_seeds_give_reproducible_and_distinct_trajectories():
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from benchmarks.md_stability import run_md

    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    runs = [run_md(EMT(), atoms, 300.0, 0.01, seed=seed) for seed in (0, 0, 1)]
    assert [r["seed"] for r in runs] == [0, 0, 1] and not any(r["failed"] for r in runs)
    assert runs[0]["mean_temperature_K"] == runs[1]["mean_temperature_K"] != runs[2]["mean_temperature_K"]
