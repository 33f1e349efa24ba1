"""The ZBL repulsion prior: the published formula, zero beyond the covalent distance, smooth."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mlip.graph import GraphBatch
from mlip.io import Frame
from mlip.models import build_potential
from mlip.nn.repulsion import ZBLRepulsion


def zbl_reference(z1: int, z2: int, r: float) -> float:
    """ZBL pair energy (eV) without the switch, written out from Ziegler, Biersack & Littmark (1985)."""
    a = 0.8854 * 0.52917721 / (z1**0.23 + z2**0.23)
    x = r / a
    phi = (0.18175 * math.exp(-3.1998 * x) + 0.50986 * math.exp(-0.94229 * x)
           + 0.28022 * math.exp(-0.4029 * x) + 0.02817 * math.exp(-0.20162 * x))
    return 14.399645 * z1 * z2 / r * phi


def dimer_energy(zbl: ZBLRepulsion, r: float) -> float:
    vectors = torch.tensor([[r, 0.0, 0.0], [-r, 0.0, 0.0]], dtype=torch.float64)
    species = torch.tensor([0, 1])
    return float(zbl(species, vectors, torch.tensor([0, 1]), torch.tensor([1, 0])).sum())


@pytest.mark.parametrize("r", [0.2, 0.4, 0.6])
def test_zbl_matches_the_formula_times_the_switch(r):
    zbl = ZBLRepulsion([1, 6]).double()  # H (0.31 Å) and C (0.76 Å): switched off at 1.07 Å
    x = r / 1.07
    switch = 1 - 28 * x**6 + 48 * x**7 - 21 * x**8
    assert dimer_energy(zbl, r) == pytest.approx(zbl_reference(1, 6, r) * switch, rel=1e-7)  # radii stored in float32 before .double()


def test_zbl_vanishes_smoothly_at_the_covalent_distance():
    zbl = ZBLRepulsion([1, 6]).double()
    assert dimer_energy(zbl, 1.07) == 0.0 and dimer_energy(zbl, 1.5) == 0.0
    def slope(r: float, h: float = 1e-6) -> float:
        return (dimer_energy(zbl, r + h) - dimer_energy(zbl, r - h)) / (2 * h)

    # C² switch: the force vanishes quadratically as the pair reaches the covalent distance
    near, nearer = slope(1.07 - 1e-2), slope(1.07 - 5e-3)
    assert abs(near) < 1e-2 * abs(slope(0.8))
    assert nearer / near == pytest.approx(0.25, rel=0.05)


def test_potential_with_zbl_repels_close_atoms_and_round_trips(tmp_path):
    from mlip.export import load, save

    torch.manual_seed(0)
    potential = build_potential("equivariant", ["H", "C"], 4.0, dtype=torch.float64, channels=4, lmax=1,
                                repulsion="zbl")
    close = Frame(numbers=np.array([1, 6]), positions=np.array([[0.0, 0, 0], [0.3, 0, 0]]))
    far = Frame(numbers=np.array([1, 6]), positions=np.array([[0.0, 0, 0], [1.2, 0, 0]]))
    energies = potential.eval()(GraphBatch.from_frames([close, far], 4.0), forces=False)["energy"]
    assert float(energies[0] - energies[1]) > 50.0  # tens of eV at 0.3 Å
    save(potential, tmp_path / "zbl.mlip")
    again = load(tmp_path / "zbl.mlip")
    assert again.repulsion is not None
    assert torch.allclose(again(GraphBatch.from_frames([close], 4.0), forces=False)["energy"], energies[:1])
