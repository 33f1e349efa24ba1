"""Exactness of every architecture: E(3) invariance, translations, permutations, supercells,
forces and stress as exact derivatives, smoothness at the cutoff, batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import make_supercell

from mlip.graph import GraphBatch
from mlip.models import UnknownElementError, build_potential, register_architecture
from mlip.testing import check_potential
from tests.physics import (CUTOFF, crystal, dimer_energy, evaluate, finite_difference_forces, finite_difference_stress,
                           molecule, moved, random_orthogonal)

SMALL = {"channels": 8, "lmax": 2, "num_layers": 2, "correlation": 3, "avg_num_neighbors": 12.0}
EQUIVARIANT = [
    pytest.param(("equivariant", {**SMALL, "radial": "spline"}), id="equivariant-spline"),
    pytest.param(("equivariant", {**SMALL, "radial": "mlp", "radial_hidden": (16,)}), id="equivariant-mlp"),
    # MACE's layout: edge harmonics and neighbour sum to l = 3, hidden l = 1, element-dependent product
    pytest.param(("equivariant", {**SMALL, "lmax": 1, "sh_lmax": 3, "a_lmax": 3, "species_product": True}),
                 id="equivariant-a3-species"),
    # the medium preset's layout: l = 3 only in the first layer's harmonics and neighbour sum
    pytest.param(("equivariant", {**SMALL, "lmax": 1, "sh_lmax": [3, 2], "a_lmax": [3, 2], "species_product": True}),
                 id="equivariant-per-layer-l"),
    pytest.param(("equivariant", {**SMALL, "lmax": 1, "repulsion": "zbl"}), id="equivariant-zbl"),
]
# Not rotation invariant by construction (it learns it): every check but O(3) applies.
TRANSFORMER = [pytest.param(("transformer", {"dim": 16, "heads": 2, "num_layers": 2, "avg_num_neighbors": 12.0}),
                            id="transformer"),
               # harmonics to l = 3 times the radial basis as the edge embedding, SchNet-style filtered values
               pytest.param(("transformer", {"dim": 16, "heads": 2, "num_layers": 2, "avg_num_neighbors": 12.0,
                                             "geometry_lmax": 3, "geometry_product": True, "edge_filter": True}),
                            id="transformer-harmonics-filter"),
               # invariant neighbourhood power spectrum in the tokens
               pytest.param(("transformer", {"dim": 16, "heads": 2, "num_layers": 2, "avg_num_neighbors": 12.0,
                                             "environment_lmax": 2}), id="transformer-environment"),
               # ... with element-resolved channels, mixed before the contraction, and in every block
               pytest.param(("transformer", {"dim": 16, "heads": 2, "num_layers": 2, "avg_num_neighbors": 12.0,
                                             "environment_lmax": 2, "environment_species": True,
                                             "environment_blocks": True}),
                            id="transformer-environment-species-blocks"),
               # unnormalised SiLU attention weights (TorchMD-Net style)
               pytest.param(("transformer", {"dim": 16, "heads": 2, "num_layers": 2, "avg_num_neighbors": 12.0,
                                             "attention_weights": "silu"}), id="transformer-silu"),
               # edge tokens attending within each atom's neighbourhood (EScAIP-style)
               pytest.param(("transformer", {"dim": 16, "heads": 2, "num_layers": 2, "avg_num_neighbors": 12.0,
                                             "attention": "edge", "edge_dim": 8}), id="transformer-edge")]
ARCHITECTURES = EQUIVARIANT + TRANSFORMER


def make(spec, dtype=torch.float64, seed=0):
    architecture, options = spec
    torch.manual_seed(seed)
    return build_potential(architecture, ["H", "C", "O", "Cu"], CUTOFF, dtype=dtype,
                           reference_energies={"H": -13.6, "C": -1029.0, "O": -2041.0, "Cu": -3.5},
                           **options).eval()


@pytest.fixture(scope="module", params=ARCHITECTURES)
def potential(request):
    return make(request.param)


@pytest.fixture(scope="module")
def systems(data_dir):
    return {"molecule": molecule(data_dir), "crystal": crystal()}


@pytest.mark.parametrize("reflect", [False, True], ids=["rotation", "reflection"])
@pytest.mark.parametrize("system", ["molecule", "crystal"])
def test_energy_invariant_and_forces_stress_equivariant_under_O3(potential, systems, system, reflect):
    if potential.config["architecture"] == "transformer":
        pytest.skip("the transformer learns rotation equivariance; it is measured, not built in")
    frame = systems[system]
    q = random_orthogonal(7, reflect)
    base = evaluate(potential, frame)
    turned = evaluate(potential, moved(frame, frame.positions @ q.T, frame.cell @ q.T))
    assert abs(turned["energy"][0] - base["energy"][0]) <= 1e-10 * abs(base["energy"][0])
    np.testing.assert_allclose(turned["forces"], base["forces"] @ q.T, atol=1e-10 * np.abs(base["forces"]).max())
    if system == "crystal":
        np.testing.assert_allclose(turned["stress"][0], q @ base["stress"][0] @ q.T,
                                   atol=1e-10 * np.abs(base["stress"]).max())


@pytest.mark.parametrize("system", ["molecule", "crystal"])
def test_translation_and_periodic_wrapping_change_nothing(potential, systems, system):
    frame = systems[system]
    base = evaluate(potential, frame)
    shifted = frame.positions + np.array([1.3, -7.1, 25.0])
    if system == "crystal":  # also choose other periodic images: wrap into the cell
        fractional = np.linalg.solve(frame.cell.T, shifted.T).T
        shifted = (fractional % 1.0) @ frame.cell
    moved_out = evaluate(potential, moved(frame, shifted))
    np.testing.assert_allclose(moved_out["energy"], base["energy"], rtol=1e-12)
    np.testing.assert_allclose(moved_out["forces"], base["forces"], atol=1e-10)


@pytest.mark.parametrize("system", ["molecule", "crystal"])
def test_permuting_atoms_permutes_forces(potential, systems, system):
    frame = systems[system]
    order = np.random.default_rng(3).permutation(frame.n_atoms)
    base = evaluate(potential, frame)
    permuted = evaluate(potential, moved(frame, frame.positions[order], numbers=frame.numbers[order]))
    np.testing.assert_allclose(permuted["energy"], base["energy"], rtol=1e-12)
    np.testing.assert_allclose(permuted["forces"], base["forces"][order], atol=1e-10)


def test_supercell_energy_per_atom_equals_cell(potential, systems):
    frame = systems["crystal"]
    from ase import Atoms

    big = make_supercell(Atoms(numbers=frame.numbers, positions=frame.positions, cell=frame.cell, pbc=True),
                         2 * np.eye(3))
    small_out = evaluate(potential, frame)
    big_out = evaluate(potential, moved(frame, big.positions, big.cell.array, big.numbers))
    assert big_out["energy"][0] / len(big) == pytest.approx(small_out["energy"][0] / frame.n_atoms, rel=1e-12)
    np.testing.assert_allclose(big_out["stress"][0], small_out["stress"][0], atol=1e-10)


@pytest.mark.parametrize("system", ["molecule", "crystal"])
def test_forces_equal_finite_differences(potential, systems, system):
    frame = systems[system]
    atoms = [0, 5, frame.n_atoms - 1]
    analytic = evaluate(potential, frame)["forces"][atoms]
    np.testing.assert_allclose(finite_difference_forces(potential, frame, atoms), analytic, atol=1e-7, rtol=1e-6)


def test_stress_equals_finite_differences(potential, systems):
    frame = systems["crystal"]
    analytic = evaluate(potential, frame)["stress"][0]
    np.testing.assert_allclose(finite_difference_stress(potential, frame), analytic, atol=1e-8, rtol=1e-6)
    np.testing.assert_allclose(analytic, analytic.T, atol=1e-12)


def test_molecule_has_no_stress(potential, systems):
    assert np.isnan(evaluate(potential, systems["molecule"])["stress"]).all()


def test_energy_smooth_across_the_cutoff(potential):
    inside, force_inside = dimer_energy(potential, 6, CUTOFF - 1e-4)
    outside, force_outside = dimer_energy(potential, 6, CUTOFF + 1e-4)
    isolated = 2 * dimer_energy(potential, 6, 100.0)[0] / 2
    assert outside == pytest.approx(isolated, abs=1e-12)
    assert abs(inside - outside) < 1e-9 and abs(force_inside) < 1e-5 and force_outside == 0.0
    distances = np.linspace(CUTOFF - 0.5, CUTOFF + 0.2, 60)
    energies = np.array([dimer_energy(potential, 6, d)[0] for d in distances])
    assert np.abs(np.diff(energies, 2)).max() < 1e-3  # no kink near the cutoff


def test_batch_equals_single_structures(potential, systems):
    frames = [systems["molecule"], systems["crystal"], crystal(seed=1)]
    together = evaluate(potential, frames)
    for k, frame in enumerate(frames):
        alone = evaluate(potential, frame)
        assert together["energy"][k] == pytest.approx(alone["energy"][0], rel=1e-12)
    np.testing.assert_allclose(together["forces"][: frames[0].n_atoms], evaluate(potential, frames[0])["forces"],
                               atol=1e-10)


@pytest.mark.parametrize("spec", EQUIVARIANT)
def test_float32_is_invariant_to_1e_5(spec, systems):
    if spec[1].get("repulsion"):
        pytest.skip("ZBL pair forces of tens of eV/Å in the rattled Cu cell cancel to ~1 eV/Å; float32 "
                    "round-off of that sum exceeds 1e-5 of the net force (exactness is tested in float64)")
    potential = make(spec, dtype=torch.float32)
    frame = systems["crystal"]
    q = random_orthogonal(11, True)
    base = evaluate(potential, frame)
    turned = evaluate(potential, moved(frame, frame.positions @ q.T, frame.cell @ q.T))
    assert potential.dtype == torch.float32
    assert abs(turned["energy"][0] - base["energy"][0]) <= 1e-5 * abs(base["energy"][0])
    np.testing.assert_allclose(turned["forces"], base["forces"] @ q.T, atol=1e-5 * np.abs(base["forces"]).max())


def test_dropout_masks_keep_the_energy_invariant_and_evaluation_is_the_plain_model(systems):
    """Equivariant dropout (training only): every mask drops whole irreps of an atom, so with the same
    mask a rotated crystal gets the same energy (float64, 1e-10); two masks give different energies;
    in evaluation mode the model equals the same weights without dropout."""
    options = {**SMALL, "lmax": 1, "sh_lmax": [3, 2], "a_lmax": [3, 2], "species_product": True}
    dropped, plain = make(("equivariant", {**options, "dropout": 0.3})), make(("equivariant", options))
    plain.load_state_dict(dropped.state_dict())
    frame = systems["crystal"]
    q = random_orthogonal(5, True)
    turned_frame = moved(frame, frame.positions @ q.T, frame.cell @ q.T)
    dropped.train()
    try:
        torch.manual_seed(3)
        base = evaluate(dropped, frame)
        torch.manual_seed(3)
        turned = evaluate(dropped, turned_frame)
        torch.manual_seed(4)
        other_mask = evaluate(dropped, frame)
    finally:
        dropped.eval()
    assert abs(turned["energy"][0] - base["energy"][0]) <= 1e-10 * abs(base["energy"][0])
    np.testing.assert_allclose(turned["forces"], base["forces"] @ q.T, atol=1e-10 * np.abs(base["forces"]).max())
    assert abs(other_mask["energy"][0] - base["energy"][0]) > 1e-6
    np.testing.assert_allclose(evaluate(dropped, frame)["energy"], evaluate(plain, frame)["energy"], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="dropout"):
        make(("equivariant", {**options, "dropout": 1.0}))


def test_unknown_element_is_refused(potential):
    from mlip.io import Frame

    frame = Frame(numbers=np.array([1, 26]), positions=np.array([[0, 0, 0], [0, 0, 1.5]]))
    with pytest.raises(UnknownElementError, match="cannot handle \\['Fe'\\]"):
        potential(GraphBatch.from_frames([frame], CUTOFF))


def test_public_physics_check_passes(potential, systems):
    """`mlip.testing.check_potential`, the suite users run on their own models, on every architecture."""
    exact = potential.config["architecture"] != "transformer"
    report = check_potential(potential, molecule=systems["molecule"], crystal=systems["crystal"], exact_rotations=exact)
    assert report.passed, str(report)
    assert len(report.checks) == 16
    generated = check_potential(potential, exact_rotations=exact)  # random systems of the model's own elements
    assert generated.passed, str(generated)


class HardCutoff(torch.nn.Module):
    """A broken network: a pair energy that jumps to zero at the cutoff."""

    def __init__(self, num_species: int, cutoff: float):
        super().__init__()
        self.cutoff, self.weight = cutoff, torch.nn.Parameter(torch.tensor(1.0))

    def forward(self, species, edge_vectors, receivers, senders):
        lengths = torch.linalg.vector_norm(edge_vectors, dim=-1)
        return torch.zeros(species.shape[0], dtype=lengths.dtype).index_add(0, receivers, self.weight / lengths)


def test_public_physics_check_catches_a_discontinuous_energy():
    register_architecture("test_hard_cutoff", HardCutoff)
    broken = build_potential("test_hard_cutoff", ["Cu"], CUTOFF, dtype=torch.float64).eval()
    report = check_potential(broken)
    assert not report.passed
    assert [check.name for check in report.failures()] == ["dimer at the cutoff: energy and force continuous"]
