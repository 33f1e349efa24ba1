"""Frame averaging and molecule attention (issue 16): exact symmetries in float64, exact forces,
continuity through degenerate principal axes, one random frame per structure in training, and
refusal of periodic cells."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import molecule as ase_molecule

from mlip.io import Frame
from mlip.models import build_potential
from mlip.nn.frames import PrincipalFrames, symmetric_eigh
from tests.physics import CUTOFF, crystal, evaluate, finite_difference_forces, molecule, moved, random_orthogonal

TINY = {"dim": 16, "heads": 2, "num_layers": 2, "avg_num_neighbors": 12.0}
VARIANTS = {
    "neighbor-O3": {"frames": "O3"},
    "neighbor-SO3": {"frames": "SO3"},
    "molecule-O3": {"attention": "molecule", "frames": "O3"},
    "molecule": {"attention": "molecule"},
}


def make(name: str, **extra):
    torch.manual_seed(0)
    return build_potential("transformer", ["H", "C", "O", "Cu"], CUTOFF, dtype=torch.float64,
                           **TINY, **VARIANTS[name], **extra).eval()


@pytest.fixture(scope="module")
def aspirin(data_dir) -> Frame:
    return molecule(data_dir)


@pytest.mark.parametrize("name,reflect,exact", [("neighbor-O3", False, True), ("neighbor-O3", True, True),
                                                ("neighbor-SO3", False, True), ("neighbor-SO3", True, False),
                                                ("molecule-O3", True, True), ("molecule", False, False)])
def test_frame_averaging_is_exactly_invariant(aspirin, name, reflect, exact):
    potential = make(name)
    q = random_orthogonal(3, reflect)
    base = evaluate(potential, aspirin, stress=False)
    turned = evaluate(potential, moved(aspirin, aspirin.positions @ q.T), stress=False)
    energy_error = abs(turned["energy"][0] - base["energy"][0]) / abs(base["energy"][0])
    force_error = np.abs(turned["forces"] - base["forces"] @ q.T).max() / np.abs(base["forces"]).max()
    if exact:  # O(3) frames: rotations and reflections; SO(3) frames: rotations
        assert energy_error <= 1e-9 and force_error <= 1e-9
    else:      # SO(3) frames under a reflection, or no frames: not invariant by construction
        assert abs(turned["energy"][0] - base["energy"][0]) > 1e-9  # eV, far above round-off


@pytest.mark.parametrize("name", list(VARIANTS))
def test_translation_and_permutation_invariance_and_exact_forces(aspirin, name):
    potential = make(name)
    base = evaluate(potential, aspirin, stress=False)
    shifted = evaluate(potential, moved(aspirin, aspirin.positions + np.array([3.1, -20.0, 7.7])), stress=False)
    np.testing.assert_allclose(shifted["energy"], base["energy"], rtol=1e-10)
    np.testing.assert_allclose(shifted["forces"], base["forces"], atol=1e-9)
    order = np.random.default_rng(0).permutation(aspirin.n_atoms)
    permuted = evaluate(potential, moved(aspirin, aspirin.positions[order], numbers=aspirin.numbers[order]), stress=False)
    np.testing.assert_allclose(permuted["energy"], base["energy"], rtol=1e-10)
    np.testing.assert_allclose(permuted["forces"], base["forces"][order], atol=1e-9)
    atoms = [0, 7, aspirin.n_atoms - 1]
    np.testing.assert_allclose(finite_difference_forces(potential, aspirin, atoms), base["forces"][atoms],
                               atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("name", ["neighbor-O3", "molecule-O3"])
def test_batch_equals_single_structures(aspirin, name):
    potential = make(name)
    other = Frame(numbers=[6, 6, 8, 1, 1, 1, 1, 1, 1], positions=ase_molecule("CH3CH2OH").positions,
                  cell=np.zeros((3, 3)), pbc=False)
    together = evaluate(potential, [aspirin, other], stress=False)
    for k, frame in enumerate([aspirin, other]):
        assert together["energy"][k] == pytest.approx(evaluate(potential, frame, stress=False)["energy"][0], rel=1e-12)


def _through_degeneracy(potential, steps: int = 121) -> np.ndarray:
    """Energies along a stretch of ethanol that makes its two smallest principal moments cross."""
    atoms = ase_molecule("CH3CH2OH")
    x = atoms.positions - atoms.positions.mean(0)
    moments, axes = np.linalg.eigh(x.T @ x / len(x))
    crossing = np.sqrt(moments[0] / moments[1])
    energies = []
    for t in crossing * (1 + np.linspace(-0.02, 0.02, steps)):
        y = x @ axes @ np.diag([1.0, t, 1.0]) @ axes.T
        energies.append(evaluate(potential, Frame(numbers=atoms.numbers, positions=y, cell=np.zeros((3, 3)),
                                                  pbc=False), forces=False, stress=False)["energy"][0])
    return np.diff(energies)


def test_energy_continuous_through_degenerate_axes():
    plain = _through_degeneracy(make("molecule-O3", plane_samples=1))
    handled = _through_degeneracy(make("molecule-O3", plane_samples=4))
    steps, smooth = np.abs(plain), np.abs(handled)
    assert steps.max() > 50 * np.median(steps)               # without handling: a jump where the axes swap
    assert np.abs(np.diff(handled)).max() < 0.1 * smooth.max()  # with it: steps change smoothly, no jump


def test_eigh_backward_is_finite_at_degenerate_moments():
    matrices = torch.diag(torch.tensor([1.0, 1.0, 2.0], dtype=torch.float64)).unsqueeze(0).requires_grad_(True)
    values, vectors = symmetric_eigh(matrices)
    (values.sum() + vectors[..., 0].square().sum() + vectors[0, 0, 1]).backward()
    assert torch.isfinite(matrices.grad).all()
    frames = PrincipalFrames("SO3", plane_samples=1)
    positions = torch.randn(10, 3, dtype=torch.float64)
    _, axes, owner, weights = frames(positions, torch.zeros(10, dtype=torch.long), 1)
    assert axes.shape == (4, 3, 3) and torch.allclose(torch.linalg.det(axes), torch.ones(4, dtype=torch.float64))
    assert torch.allclose(weights.sum(), torch.tensor(1.0, dtype=torch.float64))


def test_random_frame_training_sees_one_frame_per_structure(aspirin):
    potential = make("neighbor-O3", frame_sampling="random").train()
    calls = []
    potential.network.head = lambda tokens: calls.append(tokens.shape[0]) or tokens.sum(-1)
    evaluate(potential, [aspirin, aspirin], stress=False)
    assert calls == [2 * aspirin.n_atoms]           # one copy of each structure, not 8
    potential.eval()
    evaluate(potential, aspirin, stress=False)
    assert calls[-1] == 8 * aspirin.n_atoms          # every frame at evaluation


@pytest.mark.parametrize("name", ["neighbor-O3", "molecule"])
def test_periodic_cells_are_refused(name):
    with pytest.raises(ValueError, match="periodic cell"):
        evaluate(make(name), crystal(), stress=False)


def test_molecule_attention_caps_atoms(aspirin):
    with pytest.raises(ValueError, match="max_atoms"):
        evaluate(make("molecule", max_atoms=10), aspirin, stress=False)


def test_mlip_train_with_random_frames_gives_an_invariant_model(data_dir, tmp_path):
    import mlip.export
    from mlip.train.cli import main as train_main

    run = tmp_path / "run"
    train_main(["--run_dir", str(run), "--data.train", str(data_dir / "rmd17_aspirin_train200.npz"),
                "--data.cutoff", "4.0", "--data.batch_size", "10", "--model.model", "transformer_small",
                "--model.model_options", '{"dim": 16, "heads": 2, "num_layers": 1, "frames": "O3", '
                '"frame_sampling": "random"}', "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false"])
    potential = mlip.export.load(run / "model.mlip", dtype=torch.float64)
    frame = molecule(data_dir)
    q = random_orthogonal(5, True)
    base = evaluate(potential, frame, stress=False)
    turned = evaluate(potential, moved(frame, frame.positions @ q.T), stress=False)
    assert turned["energy"][0] == pytest.approx(base["energy"][0], rel=1e-12)
    np.testing.assert_allclose(turned["forces"], base["forces"] @ q.T, atol=1e-9)


def test_symmetry_objective_with_frames_is_refused(data_dir, tmp_path, capsys):
    from mlip.train.cli import main as train_main

    with pytest.raises(SystemExit, match="2"):
        train_main(["--run_dir", str(tmp_path / "run"), "--data.train", str(data_dir / "rmd17_aspirin_train200.npz"),
                    "--data.cutoff", "4.0", "--model.model", "transformer_small", "--model.model_options",
                    '{"frames": "O3"}', "--model.symmetry_weight", "0.1", "--trainer.max_epochs", "1",
                    "--trainer.enable_progress_bar", "false"])
    assert "already exactly invariant" in capsys.readouterr().err


def test_rotation_augmentation_defaults_to_networks_that_need_it():
    from mlip.train.module import PotentialModule

    def module(name=None, **options):
        m = PotentialModule(model="transformer_small", **options)
        m.potential = make(name) if name else build_potential("equivariant", ["H"], CUTOFF, channels=4, lmax=1)
        return m

    assert module("molecule").augments_rotations                 # transformer, not invariant: augmented
    assert not module("neighbor-O3").augments_rotations          # frame averaging: exactly invariant
    assert not module().augments_rotations                        # equivariant network
    assert not module("molecule", rotation_augmentation=False).augments_rotations
    assert module(rotation_augmentation=True).augments_rotations


@pytest.mark.parametrize("name", ["neighbor-O3", "molecule-O3", "molecule"])
def test_atoms_and_dimers_give_finite_energies_and_forces(name):
    """Degenerate covariance (one atom: all moments zero; a dimer: two zero moments)."""
    potential = make(name)
    for numbers, positions in [([8], [[0.0, 0.0, 0.0]]), ([1, 1], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.74]])]:
        out = evaluate(potential, Frame(numbers=numbers, positions=np.array(positions), cell=np.zeros((3, 3)),
                                        pbc=False), stress=False)
        assert np.isfinite(out["energy"]).all() and np.isfinite(out["forces"]).all()


def test_only_structure_modes_take_structure_inputs_so_the_plain_transformer_still_exports(tmp_path):
    from mlip.export.compiled import export_energy_program

    assert make("molecule").network.uses_structure and make("neighbor-O3").network.uses_structure
    plain = build_potential("transformer", ["H", "O"], CUTOFF, **TINY).eval()
    assert not plain.network.uses_structure
    assert export_energy_program(plain, tmp_path / "plain.pt2").exists()
    with pytest.raises(ValueError, match="whole structures"):
        export_energy_program(make("neighbor-O3"), tmp_path / "frames.pt2")
