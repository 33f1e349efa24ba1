"""Bad input raises InvalidStructureError naming the file, the frame and the problem."""

from __future__ import annotations

import json

import numpy as np
import pytest

import mlip.io
from mlip.graph import build_graph
from mlip.io import InvalidStructureError

GOOD = """2
Properties=species:S:1:pos:R:3:forces:R:3 energy=-1.0 pbc="F F F"
H 0.0 0.0 0.0 0.1 0.0 0.0
H 0.0 0.0 0.74 -0.1 0.0 0.0
"""


def _write(tmp_path, text, name="bad.xyz"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _raises(path, match, **options):
    with pytest.raises(InvalidStructureError, match=match) as info:
        mlip.io.read(path, **options)
    assert str(path) in str(info.value)
    return info.value


def test_missing_file_is_named(tmp_path):
    _raises(tmp_path / "nope.xyz", "does not exist")


def test_unreadable_file(tmp_path):
    path = _write(tmp_path, "this is not a structure file\n", "garbage.xyz")
    error = _raises(path, "cannot parse")
    assert error.index == 0


def test_empty_file(tmp_path):
    _raises(_write(tmp_path, ""), "empty")


def test_missing_requested_label_names_key_and_frame(tmp_path):
    path = _write(tmp_path, GOOD + GOOD.replace("energy=-1.0 ", ""))
    error = _raises(path, "missing requested label 'energy'", require=("energy",))
    assert error.index == 1 and "frame 1" in str(error)
    _raises(path, "missing requested label 'REF_energy'", energy_key="REF_energy", require=("energy",))


def test_missing_label_error_names_the_key_the_file_has(tmp_path):
    """MACE-style files label energies REF_energy: the error says which key to pass, and how."""
    path = _write(tmp_path, GOOD.replace("forces:R:3 energy=", "REF_forces:R:3 REF_energy="))
    error = str(_raises(path, "missing requested label 'energy'", require=("energy", "forces")))
    assert "the frame has 'REF_energy': pass energy_key='REF_energy'" in error and "--energy-key REF_energy" in error
    assert "mlip-train: --data.energy_key REF_energy" in error
    _raises(path, "the frame has 'REF_forces'", energy_key="REF_energy", require=("energy", "forces"))
    assert len(mlip.io.read(path, energy_key="REF_energy", forces_key="REF_forces", require=("energy", "forces"))) == 1


def test_nan_forces(tmp_path):
    path = _write(tmp_path, GOOD + GOOD.replace("-0.1 0.0 0.0", "nan 0.0 0.0"))
    error = _raises(path, "forces contain NaN")
    assert error.index == 1


def test_infinite_energy(tmp_path):
    _raises(_write(tmp_path, GOOD.replace("energy=-1.0", "energy=inf")), "energy is not finite")


def test_forces_of_wrong_shape(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, nuclear_charges=np.array([1, 1]), coords=np.zeros((2, 2, 3)) + [[0, 0, 0], [0, 0, 1]],
             energies=np.zeros(2), forces=np.zeros((2, 3, 3)))
    _raises(path, "forces must have shape \\(2, 3\\)")


def test_unknown_element_symbol(tmp_path):
    _raises(_write(tmp_path, GOOD.replace("H 0.0 0.0 0.74", "Xx 0.0 0.0 0.74")), "cannot parse")


def test_unknown_atomic_number(tmp_path):
    path = tmp_path / "z.npz"
    np.savez(path, nuclear_charges=np.array([1, 200]), coords=np.array([[[0, 0, 0], [0, 0, 1.0]]]))
    _raises(path, "unknown element: atomic number 200")


def test_zero_volume_cell(tmp_path):
    text = GOOD.replace('pbc="F F F"', 'Lattice="1 0 0 2 0 0 0 0 1" pbc="T T T"')
    _raises(_write(tmp_path, text), "zero volume")


def test_atoms_too_close_are_refused_with_their_indices(tmp_path):
    path = _write(tmp_path, GOOD.replace("H 0.0 0.0 0.74", "H 0.0 0.0 0.01"))
    (frame,) = mlip.io.read(path)
    with pytest.raises(InvalidStructureError, match="atoms 0 and 1 are 0.010 Å apart") as info:
        build_graph(frame, cutoff=5.0, min_distance=0.5)
    assert str(path) in str(info.value) and "frame 0" in str(info.value)


def test_bad_mptrj_record(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps([{"structure": {"not": "a structure"}}]))
    _raises(path, "not a valid pymatgen structure")


def test_disordered_mptrj_site_is_refused(tmp_path):
    structure = {"lattice": {"matrix": [[3, 0, 0], [0, 3, 0], [0, 0, 3]]},
                 "sites": [{"species": [{"element": "Si", "occu": 0.5}, {"element": "Ge", "occu": 0.5}],
                            "abc": [0, 0, 0]}]}
    path = tmp_path / "m.json"
    path.write_text(json.dumps([{"structure": structure, "uncorrected_total_energy": -1.0}]))
    _raises(path, "site 0 is disordered")


def test_unknown_element_in_mptrj(tmp_path):
    structure = {"lattice": {"matrix": [[3, 0, 0], [0, 3, 0], [0, 0, 3]]},
                 "sites": [{"species": [{"element": "Qq", "occu": 1}], "abc": [0, 0, 0]}]}
    path = tmp_path / "m.json"
    path.write_text(json.dumps([{"structure": structure}]))
    _raises(path, "unknown element symbol 'Qq'")
