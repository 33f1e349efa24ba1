"""Tabulated radial functions (cubic Hermite tables for inference): measured error, exact
derivatives of the interpolant, and a table that can never go stale."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk

from mlip.calculator import MLIPCalculator
from mlip.graph import GraphBatch
from mlip.io import Frame
from mlip.models import build_potential
from mlip.models.presets import load_preset
from mlip.nn.radial import BesselMLPRadial, SplineRadial


def max_relative_error(radial, intervals: int) -> tuple[float, float]:
    """Largest |tabulated − exact| / max|exact| of values and of d/dr over 0.5 Å ≤ r ≤ r_cut."""
    r = torch.linspace(0.5, radial.cutoff, 4001, dtype=torch.float64)

    def values_and_slopes():
        leaf = r.clone().requires_grad_(True)
        values = radial(leaf)
        slopes = torch.autograd.grad(values.sum(), leaf)[0]  # each weight depends on its own r
        return values.detach(), slopes

    exact, exact_slopes = values_and_slopes()
    radial.tabulate(intervals)
    table, table_slopes = values_and_slopes()
    radial.untabulate()
    return (float((table - exact).abs().max() / exact.abs().max()),
            float((table_slopes - exact_slopes).abs().max() / exact_slopes.abs().max()))


def test_mlp_radial_table_error_falls_as_h_to_the_fourth():
    torch.manual_seed(0)
    radial = BesselMLPRadial(5.0, 48).double().eval()
    errors = {n: max_relative_error(radial, n)[0] for n in (256, 512, 1024, 2048)}
    assert errors[2048] < 1e-7, errors
    for coarse, fine in ((256, 512), (512, 1024), (1024, 2048)):
        assert 10 < errors[coarse] / errors[fine] < 24, errors  # 16 for an O(h⁴) interpolant
    assert max_relative_error(radial, 2048)[1] < 1e-5  # its slope, O(h³)


def test_spline_radial_table_is_exact_on_a_grid_through_its_knots():
    torch.manual_seed(0)
    radial = SplineRadial(5.0, 48, num_basis=8).double().eval()
    assert max(max_relative_error(radial, 64)) < 1e-12  # each piece is one cubic of the spline


def test_table_is_zero_beyond_the_cutoff_and_never_saved_or_trained():
    torch.manual_seed(0)
    radial = BesselMLPRadial(5.0, 16).eval().tabulate(512)
    assert torch.equal(radial(torch.tensor([5.0, 5.3, 9.0])), torch.zeros(3, 16))
    assert not any("table" in key for key in radial.state_dict())
    radial.train()
    assert radial.table is None  # training evaluates the function itself
    with pytest.raises(RuntimeError, match="eval"):
        radial.tabulate(512)


def test_table_follows_dtype_changes_and_loaded_weights():
    torch.manual_seed(0)
    radial = BesselMLPRadial(5.0, 16).eval().tabulate(2048)
    radial.double()
    assert radial.table.dtype == torch.float64
    assert max_relative_error(radial.tabulate(2048), 2048)[0] < 1e-7  # rebuilt, not a cast float32 table
    other = BesselMLPRadial(5.0, 16).double().eval()
    radial.load_state_dict(other.state_dict())
    r = torch.linspace(1.0, 4.0, 7, dtype=torch.float64)
    assert torch.allclose(radial(r), other(r), rtol=1e-7, atol=1e-9)


@pytest.fixture(scope="module")
def silicon_and_potential():
    torch.manual_seed(0)
    options = load_preset("equivariant_medium")
    potential = build_potential(options.pop("architecture"), ["Si"], 5.0, dtype=torch.float64, **options)
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.rattle(0.1, seed=1)
    return atoms, potential.eval()


def test_tabulated_potential_matches_the_exact_one_and_forces_stay_exact_derivatives(silicon_and_potential):
    atoms, potential = silicon_and_potential
    batch = GraphBatch.from_frames([Frame(numbers=atoms.numbers, positions=atoms.positions,
                                          cell=atoms.cell.array, pbc=atoms.pbc)], potential.cutoff)
    exact = potential.tabulate_radials(False)(batch, forces=True, stress=True)
    table = potential.tabulate_radials(True)(batch, forces=True, stress=True)
    potential.tabulate_radials(False)
    assert abs(float((table["energy"] - exact["energy"]).detach())) < 1e-6 * len(atoms)  # eV
    assert torch.allclose(table["forces"], exact["forces"], atol=1e-6)
    assert torch.allclose(table["stress"], exact["stress"], atol=1e-7)
    # the calculator tabulates by default; its forces are the finite differences of its energy
    from ase.calculators.fd import calculate_numerical_forces

    calculator = MLIPCalculator(potential, skin=0.0)
    assert calculator.potential.network.blocks[0].conv.radial.table is not None
    atoms.calc = calculator
    numerical = calculate_numerical_forces(atoms, eps=1e-4)
    np.testing.assert_allclose(atoms.get_forces(), numerical, atol=1e-6)
    assert abs(atoms.get_potential_energy() - float(exact["energy"])) < 1e-6 * len(atoms)
    assert MLIPCalculator(potential, tabulate=False).potential.network.blocks[0].conv.radial.table is None
