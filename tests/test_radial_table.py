"""The tabulated radial function of compiled float32 inference (`mlip.nn.radial_table`): as accurate as the
float32 MLP it stands in for, in values and in slopes, smooth at its knots, zero at the cutoff, and
refused for a function too rough to tabulate."""

from __future__ import annotations

import pytest
import torch

from mlip.nn.radial import BesselMLPRadial
from mlip.nn.radial_table import FLOAT32_ROUNDING, RadialTables, TabulatedRadial, derivatives


def _radial(width: int = 48) -> BesselMLPRadial:
    torch.manual_seed(0)
    return BesselMLPRadial(5.0, width).double()


def _error(approximate: torch.Tensor, exact: torch.Tensor) -> float:
    return ((approximate.double() - exact).abs().max() / exact.abs().max()).item()


def test_float32_table_is_as_accurate_as_the_float32_mlp_in_values_and_slopes():
    radial = _radial()
    table = TabulatedRadial.build(radial, 5.0)
    assert max(table.errors) <= FLOAT32_ROUNDING and table.coefficients.dtype == torch.float32
    r = torch.linspace(0.6, 4.99, 2001, dtype=torch.float64)
    values, slopes, _ = derivatives(radial, r)
    table_values, table_slopes, _ = derivatives(lambda x: table(x.float()).double(), r)
    mlp32 = _radial().float()
    mlp_values, mlp_slopes, _ = derivatives(lambda x: mlp32(x.float()).double(), r)
    assert _error(table_values, values) <= 2 * max(_error(mlp_values, values), FLOAT32_ROUNDING)
    assert _error(table_slopes, slopes) <= 2 * max(_error(mlp_slopes, slopes), FLOAT32_ROUNDING)


def test_table_is_smooth_at_its_knots_and_zero_from_the_cutoff_on():
    radial = _radial()
    table = TabulatedRadial.build(radial, 5.0, dtype=torch.float64)
    h = 5.0 / table.pieces
    knots = torch.tensor([17, 300, table.pieces - 1], dtype=torch.float64) * h
    below, _, curvature_below = derivatives(table, knots - 1e-9)
    above, _, curvature_above = derivatives(table, knots + 1e-9)
    torch.testing.assert_close(below, above, rtol=0, atol=1e-7)
    torch.testing.assert_close(curvature_below, curvature_above, rtol=1e-3, atol=1e-3)  # C²
    beyond = table(torch.tensor([5.0, 5.3], dtype=torch.float64))
    assert beyond.abs().max().item() < 1e-12


def test_a_function_too_rough_to_tabulate_is_refused():
    def rough(r: torch.Tensor) -> torch.Tensor:
        return torch.sin(400.0 * r).unsqueeze(-1)

    with pytest.raises(ValueError, match="pieces to be tabulated"):
        TabulatedRadial.build(rough, 5.0, max_pieces=512)


def test_tables_follow_the_weights_and_leave_the_module_state_alone():
    radial = _radial().float().requires_grad_(False)
    keys = set(radial.state_dict())
    tables = RadialTables(radial)
    table = radial.inference_table
    r = torch.linspace(0.8, 4.9, 50)
    before = table(r)
    torch.testing.assert_close(before, radial(r), rtol=0, atol=1e-5)  # eagerly the MLP runs: they agree
    with torch.no_grad():
        radial.mlp[-1].weight.mul_(1.5)
    tables.refresh()
    assert radial.inference_table is table  # rebuilt in place: a compiled graph reads the new coefficients
    torch.testing.assert_close(table(r), radial(r), rtol=0, atol=1e-5)
    assert set(radial.state_dict()) == keys


def test_a_radial_that_cannot_be_tabulated_keeps_its_mlp_and_new_weights_too_rough_are_refused():
    radial = _radial().float().requires_grad_(False)
    RadialTables(radial, tolerance=1e-30)  # no table reaches this: the MLP stays
    assert radial.inference_table is None
    tables = RadialTables(radial)
    with torch.no_grad():  # frequencies far beyond what 1,024 pieces resolve
        radial.basis.frequencies.mul_(60.0)
    with pytest.raises(ValueError, match="compile the model again"):
        tables.refresh()
