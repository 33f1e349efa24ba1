"""mlip as a torch-sim model: torch-sim's own interface check, and the same energies, forces and
stresses as `MLIPCalculator` (float64 to 1e-9, float32 to 1e-5) on a molecule and on cubic,
triclinic and slab cells, one at a time and batched together."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, fcc111, molecule

from mlip.calculator import MLIPCalculator
from mlip.models import build_potential

ts = pytest.importorskip("torch_sim")
from mlip.integrations.torchsim import MLIPModel  # noqa: E402
from torch_sim.models.interface import validate_model_outputs  # noqa: E402


def _potential(dtype: torch.dtype, elements: list[str]):
    torch.manual_seed(0)
    return build_potential("equivariant", elements, 4.5, dtype=dtype, channels=8, lmax=1,
                           avg_num_neighbors=20.0,
                           reference_energies={e: -1.0 - k for k, e in enumerate(elements)}).eval()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_torch_sim_validates_the_interface(dtype):
    validate_model_outputs(MLIPModel(_potential(dtype, ["Si", "Fe"])), torch.device("cpu"), dtype)


def _periodic_structures() -> list[Atoms]:
    rng = np.random.default_rng(0)
    cubic = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    cubic.rattle(0.05, seed=1)
    triclinic = bulk("Cu", "fcc", a=3.6).repeat((3, 2, 2))
    triclinic.set_cell(triclinic.cell.array @ (np.eye(3) + 0.05 * rng.standard_normal((3, 3))), scale_atoms=True)
    triclinic.rattle(0.05, seed=2)
    slab = fcc111("Cu", size=(2, 2, 3), vacuum=6.0)
    slab.pbc = True  # torch-sim's states are periodic along all three directions or none
    slab.rattle(0.05, seed=3)
    return [cubic, triclinic, slab]


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-9), (torch.float32, 1e-5)],
                         ids=["float64", "float32"])
def test_batched_results_equal_the_calculator(dtype, tolerance):
    potential = _potential(dtype, ["Cu", "H", "C", "O"])
    model = MLIPModel(potential)
    crystals = _periodic_structures()
    out = model(ts.io.atoms_to_state(crystals, torch.device("cpu"), dtype))
    start = 0
    for k, atoms in enumerate(crystals):
        atoms.calc = MLIPCalculator(potential)
        scale = max(1.0, abs(atoms.get_potential_energy()))
        assert float(out["energy"][k]) == pytest.approx(atoms.get_potential_energy(), abs=tolerance * scale)
        np.testing.assert_allclose(out["forces"][start:start + len(atoms)].numpy(), atoms.get_forces(),
                                   atol=tolerance * 10)
        full = atoms.get_stress(voigt=False)
        np.testing.assert_allclose(out["stress"][k].numpy(), full, atol=tolerance)
        start += len(atoms)

    water = molecule("CH3OH")
    out = model(ts.io.atoms_to_state([water], torch.device("cpu"), dtype))
    water.calc = MLIPCalculator(potential)
    assert float(out["energy"][0]) == pytest.approx(water.get_potential_energy(), abs=tolerance * 10)
    np.testing.assert_allclose(out["forces"].numpy(), water.get_forces(), atol=tolerance * 10)
