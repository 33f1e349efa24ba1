"""MLIPCalculator honours ASE's contract: results equal the model, forces and stress equal
finite differences of its own energy, the neighbour list is reused with a skin."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress

import mlip.export
import mlip.io
from mlip.calculator import MLIPCalculator
from mlip.graph import GraphBatch
from mlip.models import UnknownElementError, build_potential


@pytest.fixture(scope="module")
def potential():
    torch.manual_seed(0)
    return build_potential("equivariant", ["Cu", "H", "C", "O"], 4.0, dtype=torch.float64, channels=8, lmax=1,
                           avg_num_neighbors=20.0).eval()


@pytest.fixture()
def copper():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.02 * np.random.default_rng(0).standard_normal((3, 3))),
                   scale_atoms=True)
    atoms.rattle(0.05, seed=2)
    return atoms


def test_results_equal_a_direct_model_call(potential, copper):
    copper.calc = MLIPCalculator(potential)
    frame = mlip.io.Frame(numbers=copper.numbers, positions=copper.positions, cell=copper.cell.array, pbc=copper.pbc)
    direct = potential(GraphBatch.from_frames([frame], 4.0), forces=True, stress=True)
    assert copper.get_potential_energy() == pytest.approx(float(direct["energy"][0]), rel=1e-12)
    assert copper.get_potential_energy(force_consistent=True) == copper.get_potential_energy()
    np.testing.assert_allclose(copper.get_forces(), direct["forces"].detach().numpy(), atol=1e-12)
    s = direct["stress"][0].detach().numpy()
    np.testing.assert_allclose(copper.get_stress(), [s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]], atol=1e-12)
    assert copper.get_potential_energies().sum() == pytest.approx(copper.get_potential_energy(), rel=1e-12)


def test_forces_and_stress_equal_finite_differences(potential, copper):
    copper.calc = MLIPCalculator(potential)
    np.testing.assert_allclose(copper.get_forces(), calculate_numerical_forces(copper, eps=1e-4), atol=1e-7)
    np.testing.assert_allclose(copper.get_stress(), calculate_numerical_stress(copper, eps=1e-5), atol=1e-7)


def test_neighbour_list_is_reused_within_half_the_skin(potential, copper):
    calc = MLIPCalculator(potential, skin=0.5)
    reference = MLIPCalculator(potential, skin=0.0)
    copper.calc = calc
    copper.get_potential_energy()
    rng = np.random.default_rng(5)
    for step in range(3):  # each atom moves < 0.07 Å a step: < skin / 2 in total, no rebuild
        copper.positions += rng.uniform(-0.04, 0.04, copper.positions.shape)
        energy = copper.get_potential_energy()
        assert energy == pytest.approx(reference.get_potential_energy(copper), rel=1e-12)
    assert calc.neighbors.builds == 1
    copper.positions[3] += 0.4  # beyond skin / 2: rebuilt
    assert copper.get_potential_energy() == pytest.approx(reference.get_potential_energy(copper), rel=1e-12)
    assert calc.neighbors.builds == 2


def test_molecule_from_a_model_file(potential, data_dir, tmp_path):
    path = mlip.export.save(potential, tmp_path / "m.mlip")
    aspirin = mlip.io.read(data_dir / "rmd17_aspirin_train200.npz")[0]
    from ase import Atoms

    atoms = Atoms(numbers=aspirin.numbers, positions=aspirin.positions)
    atoms.calc = MLIPCalculator(path, dtype=torch.float64)
    np.testing.assert_allclose(atoms.get_forces(), calculate_numerical_forces(atoms, eps=1e-4), atol=1e-7)
    with pytest.raises(PropertyNotImplementedError):
        atoms.get_stress()


def test_unknown_element_is_named(potential):
    atoms = bulk("Fe", "bcc", a=2.87)
    atoms.calc = MLIPCalculator(potential)
    with pytest.raises(UnknownElementError, match="Fe"):
        atoms.get_potential_energy()


def test_nve_conserves_energy_with_kept_neighbour_list(potential, copper):
    from ase import units
    from ase.md.verlet import VelocityVerlet

    from mlip.simulate.md import THERMALIZE

    copper.calc = MLIPCalculator(potential, skin=0.5)
    THERMALIZE(copper, temperature_K=300, rng=np.random.default_rng(0))
    dynamics = VelocityVerlet(copper, timestep=1.0 * units.fs)
    start = copper.get_total_energy()
    energies = []
    for _ in range(10):
        dynamics.run(20)
        energies.append(copper.get_total_energy())
    drift = np.abs(np.array(energies) - start).max() / len(copper)
    assert drift < 1e-4  # eV/atom over 200 fs
    assert copper.calc.neighbors.builds < 10


def test_slab_has_stress_equal_to_finite_differences(potential):
    from ase.build import fcc111

    slab = fcc111("Cu", size=(2, 2, 3), vacuum=6.0, a=3.6)
    slab.rattle(0.05, seed=3)
    assert list(slab.pbc) == [True, True, False]
    slab.calc = MLIPCalculator(potential)
    np.testing.assert_allclose(slab.get_stress(), calculate_numerical_stress(slab, eps=1e-5), atol=1e-7)


def test_dtype_by_name_and_model_recorded_in_todict(potential, tmp_path):
    path = mlip.export.save(potential, tmp_path / "m.mlip")
    calc = MLIPCalculator(path, dtype="float32")
    assert calc.dtype == torch.float32
    record = calc.todict()
    assert record["model"] == str(path) and record["dtype"] == "float32"
    assert record["model_sha256"] == __import__("hashlib").sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ValueError, match="float32 or float64"):
        MLIPCalculator(path, dtype="float16")
