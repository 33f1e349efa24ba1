"""Readers turn each supported format into Frames in eV and Å."""

from __future__ import annotations

import json

import ase.io
import numpy as np
import pytest
from ase.build import bulk, molecule

import mlip.io
from mlip.io.units import KBAR, KCAL_PER_MOL
from tests.conftest import emt_structures


def test_rmd17_npz_is_converted_from_kcal_per_mol(data_dir):
    frames = mlip.io.read(data_dir / "rmd17_aspirin_train200.npz")
    raw = np.load(data_dir / "rmd17_aspirin_train200.npz")
    assert len(frames) == 200
    assert frames[3].energy == pytest.approx(raw["energies"][3] * KCAL_PER_MOL)
    np.testing.assert_allclose(frames[3].forces, raw["forces"][3] * KCAL_PER_MOL)
    assert KCAL_PER_MOL == pytest.approx(0.0433641, rel=1e-5)
    assert frames[0].source.endswith("rmd17_aspirin_train200.npz") and frames[7].index == 7
    assert not frames[0].pbc.any()


def test_original_md17_layout_is_read(tmp_path):
    path = tmp_path / "md17.npz"
    np.savez(path, z=np.array([8, 1, 1]), R=np.random.rand(4, 3, 3) * 2, E=np.ones((4, 1)), F=np.zeros((4, 3, 3)))
    frames = mlip.io.read(path)
    assert len(frames) == 4 and frames[0].energy == pytest.approx(KCAL_PER_MOL)


def test_extxyz_energy_and_forces(data_dir):
    frames = mlip.io.read(data_dir / "acac_train_300K_100.xyz")
    assert len(frames) == 100
    assert frames[0].energy == pytest.approx(-9391.45554428476)
    assert frames[0].forces.shape == (15, 3)


def test_extxyz_custom_keys_and_virial_become_stress(tmp_path):
    atoms = emt_structures(1)[0]
    stress = atoms.get_stress(voigt=False)
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    plain = atoms.copy()
    plain.info["REF_energy"] = energy
    plain.arrays["REF_forces"] = forces
    plain.info["REF_virial"] = -stress * atoms.get_volume()
    path = tmp_path / "custom.xyz"
    ase.io.write(path, plain, format="extxyz")
    (frame,) = mlip.io.read(path, energy_key="REF_energy", forces_key="REF_forces", virial_key="REF_virial")
    assert frame.energy == pytest.approx(energy)
    np.testing.assert_allclose(frame.forces, forces, atol=1e-8)
    np.testing.assert_allclose(frame.stress, stress, atol=1e-10)
    assert frame.pbc.all()


def test_extxyz_stress_from_calculator_results(emt_extxyz):
    frames = mlip.io.read(emt_extxyz, require=("energy", "forces", "stress"))
    reference = emt_structures()
    assert len(frames) == len(reference)
    np.testing.assert_allclose(frames[2].stress, reference[2].get_stress(voigt=False), atol=1e-8)


def test_cif_and_poscar_give_unlabelled_crystals(tmp_path):
    si = bulk("Si", "diamond", a=5.43)
    ase.io.write(tmp_path / "si.cif", si)
    ase.io.write(tmp_path / "POSCAR", si, format="vasp")
    for name in ("si.cif", "POSCAR"):
        (frame,) = mlip.io.read(tmp_path / name)
        assert frame.energy is None and frame.forces is None
        assert sorted(frame.numbers.tolist()) == [14, 14]
        assert abs(np.linalg.det(frame.cell)) == pytest.approx(si.get_volume(), rel=1e-6)


def test_folder_of_structures_is_read_in_name_order(tmp_path):
    for i, a in enumerate((5.40, 5.43, 5.46)):
        ase.io.write(tmp_path / f"s{i}.vasp", bulk("Si", "diamond", a=a), format="vasp")
    frames = mlip.io.read(tmp_path)
    volumes = [abs(np.linalg.det(f.cell)) for f in frames]
    assert volumes == sorted(volumes) and len(frames) == 3


def _mptrj_record(atoms, stress_kbar):
    from pymatgen.io.ase import AseAtomsAdaptor

    return {
        "structure": AseAtomsAdaptor.get_structure(atoms).as_dict(),
        "uncorrected_total_energy": -10.0,
        "corrected_total_energy": -11.0,
        "force": np.full((len(atoms), 3), 0.1).tolist(),
        "stress": stress_kbar,
    }


def test_mptrj_json_converts_kbar_stress_with_ase_sign(tmp_path):
    si = bulk("Si", "diamond", a=5.43)
    kbar = [[-2.0, 0.0, 0.0], [0.0, -2.0, 0.0], [0.0, 0.0, -2.0]]
    path = tmp_path / "mptrj.json"
    path.write_text(json.dumps({"mp-149": {"mp-149-0-0": _mptrj_record(si, kbar), "mp-149-0-1": _mptrj_record(si, kbar)}}))
    frames = mlip.io.read(path, require=("energy", "forces", "stress"))
    assert len(frames) == 2
    assert frames[0].energy == -10.0
    # VASP reports -2 kBar (tensile); ASE's convention gives a positive stress of 0.2 GPa.
    np.testing.assert_allclose(np.diag(frames[0].stress), 2.0 * KBAR)
    assert frames[0].stress[0, 0] > 0


def test_molecule_from_ase_trajectory(tmp_path):
    water = molecule("H2O")
    ase.io.write(tmp_path / "w.traj", [water, water])
    frames = mlip.io.read(tmp_path / "w.traj")
    assert len(frames) == 2 and frames[0].n_atoms == 3


def test_json_list_of_pymatgen_structures(tmp_path):
    from pymatgen.io.ase import AseAtomsAdaptor

    structures = [AseAtomsAdaptor.get_structure(bulk("Si", "diamond", a=a)).as_dict() for a in (5.40, 5.45)]
    path = tmp_path / "structures.json"
    path.write_text(json.dumps(structures))
    frames = mlip.io.read(path)
    assert len(frames) == 2 and frames[0].energy is None and frames[1].n_atoms == 2


def test_mlearn_json_labels_and_virial_stress_order(tmp_path):
    """mlearn: labels under `outputs`, `virial_stress` in kBar, VASP order XX YY ZZ XY YZ ZX, compressive positive."""
    from pymatgen.core import Lattice, Structure

    structure = Structure(Lattice.cubic(5.43), ["Si", "Si"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    record = {"structure": structure.as_dict(), "group": "Elastic", "num_atoms": 2,
              "outputs": {"energy": -10.8, "forces": [[0.1, 0, 0], [-0.1, 0, 0]],
                          "virial_stress": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}}
    (tmp_path / "training.json").write_text(json.dumps([record]))
    frame = mlip.io.read(tmp_path / "training.json", require=("energy", "forces", "stress"))[0]
    assert frame.energy == pytest.approx(-10.8)
    np.testing.assert_allclose(frame.forces[0], [0.1, 0, 0])
    expected = -KBAR * np.array([[1.0, 4.0, 6.0], [4.0, 2.0, 5.0], [6.0, 5.0, 3.0]])
    np.testing.assert_allclose(frame.stress, expected)


def _sheared_record(component: str, strain: float, entry: int) -> dict:
    """An mlearn Elastic record: a cubic Si cell sheared in `component`, its stress in shear entry `entry`."""
    from pymatgen.core import Lattice, Structure

    cell = 5.43 * np.eye(3)
    i, j = {"xy": (1, 0), "yz": (2, 1), "zx": (2, 0)}[component]
    cell[i, j] = 2 * strain * 5.43
    virial = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    virial[3 + entry] = -50.0 * np.sign(strain)
    structure = Structure(Lattice(cell), ["Si", "Si"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    return {"structure": structure.as_dict(), "group": "Elastic", "description": f"{component} {strain}",
            "outputs": {"energy": -10.8, "forces": [[0, 0, 0], [0, 0, 0]], "virial_stress": virial}}


@pytest.mark.parametrize("order", [("xy", "yz", "zx"), ("xy", "zx", "yz")])
def test_mlearn_shear_order_is_read_off_the_elastic_cells(tmp_path, order):
    """mlearn's Si and Mo files store the shears in different orders; the Elastic cells tell which."""
    from mlip.io.mptrj_reader import mlearn_shear_order, read_mptrj

    records = [_sheared_record(component, strain, entry) for entry, component in enumerate(order)
               for strain in (-0.02, 0.02)]
    assert mlearn_shear_order(records) == order
    (tmp_path / "training.json").write_text(json.dumps(records))
    frames = mlip.io.read(tmp_path / "training.json", require=("stress",))
    for frame in frames:  # the stress sits on the sheared component, with ASE's sign (tension positive)
        i, j = np.unravel_index(np.argmax(np.abs(frame.stress - np.diag(np.diag(frame.stress)))), (3, 3))
        assert abs(frame.cell[max(i, j), min(i, j)]) > 0.1
        assert np.sign(frame.stress[i, j]) == np.sign(frame.cell[max(i, j), min(i, j)])
    (tmp_path / "test.json").write_text(json.dumps([records[0]]))
    forced = next(read_mptrj(tmp_path / "test.json", shear_order=("xy", "yz", "zx")))
    assert forced.stress is not None
