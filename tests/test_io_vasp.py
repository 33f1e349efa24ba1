"""VASP vasprun.xml: every ionic step becomes a frame; stress from kBar (VASP sign) to eV/Å³ (ASE sign)."""

from __future__ import annotations

import numpy as np
import pytest

import mlip.io
from mlip.io.units import KBAR


def _varray(name: str, rows) -> str:
    body = "".join(f"<v>{' '.join(f'{x:.10f}' for x in row)}</v>" for row in rows)
    return f'<varray name="{name}">{body}</varray>'


def _structure(cell, fractional, name: str | None = None) -> str:
    label = f' name="{name}"' if name else ""
    return f"<structure{label}><crystal>{_varray('basis', cell)}</crystal>{_varray('positions', fractional)}</structure>"


def write_vasprun(path, symbols, cell, steps) -> None:
    """A minimal vasprun.xml with the elements ASE's reader uses; steps: (fractional, energy, forces, stress_kbar)."""
    atoms = "".join(f"<rc><c>{s}</c><c>1</c></rc>" for s in symbols)
    calculations = "".join(
        f'<calculation><scstep><energy><i name="e_fr_energy">{e}</i><i name="e_0_energy">{e}</i></energy></scstep>'
        f"{_structure(cell, frac)}{_varray('forces', f)}{_varray('stress', s)}"
        f'<energy><i name="e_fr_energy">{e}</i></energy></calculation>'
        for frac, e, f, s in steps
    )
    path.write_text(
        '<?xml version="1.0" encoding="ISO-8859-1"?><modeling>'
        '<kpoints><varray name="kpointlist"><v>0 0 0</v></varray><varray name="weights"><v>1</v></varray></kpoints>'
        f'<atominfo><atoms>{len(symbols)}</atoms><array name="atoms"><set>{atoms}</set></array></atominfo>'
        f"{_structure(cell, steps[0][0], 'initialpos')}{calculations}</modeling>"
    )


def test_vasprun_ionic_steps_with_stress(tmp_path):
    cell = np.eye(3) * 5.43
    frac = np.array([[0.0, 0.0, 0.0], [0.25, 0.25, 0.25]])
    forces = np.array([[0.1, -0.2, 0.3], [-0.1, 0.2, -0.3]])
    kbar = np.diag([-2.0, -3.0, -4.0])
    steps = [(frac, -10.5, forces, kbar), (frac + 0.01, -10.7, 0.5 * forces, 0.5 * kbar)]
    path = tmp_path / "vasprun.xml"
    write_vasprun(path, ["Si", "Si"], cell, steps)
    frames = mlip.io.read(path, require=("energy", "forces", "stress"))
    assert len(frames) == 2
    assert [f.energy for f in frames] == pytest.approx([-10.5, -10.7])
    np.testing.assert_allclose(frames[0].forces, forces)
    np.testing.assert_allclose(frames[1].positions, (frac + 0.01) @ cell, atol=1e-8)
    # VASP's -2 kBar means tensile: ASE's stress is +0.2 GPa.
    np.testing.assert_allclose(np.diag(frames[0].stress), [2.0 * KBAR, 3.0 * KBAR, 4.0 * KBAR], rtol=1e-8)
    assert frames[0].pbc.all() and frames[1].index == 1
