"""The training loss: its force terms (mse, huber, l2norm), masking of missing labels, and its logged parts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlip.graph import GraphBatch
from mlip.io import Frame
from mlip.train.loss import LossWeights, force_term, weighted_loss


def _batch_and_prediction(missing_forces: bool = False) -> tuple[GraphBatch, dict[str, torch.Tensor]]:
    """Two molecules (3 and 2 atoms) with labels, and a prediction whose errors are known."""
    rng = np.random.default_rng(0)
    frames = []
    for n in (3, 2):
        positions = rng.normal(size=(n, 3)) * 1.5
        forces = rng.normal(size=(n, 3))
        if missing_forces and n == 2:
            forces = forces * np.nan
        frames.append(Frame(numbers=np.full(n, 6), positions=positions, energy=float(-n), forces=forces))
    batch = GraphBatch.from_frames(frames, 4.0, min_distance=None)
    error = torch.tensor(rng.normal(size=(5, 3)) * 0.05, dtype=batch.positions.dtype)
    predicted = {"energy": batch.energy + torch.tensor([0.03, -0.02], dtype=batch.energy.dtype),
                 "forces": torch.nan_to_num(batch.forces) + error}
    return batch, predicted


def test_default_force_term_is_the_mean_squared_component_error():
    batch, predicted = _batch_and_prediction()
    loss, parts = weighted_loss(predicted, batch, LossWeights(energy=1.0, forces=100.0))
    error = predicted["forces"] - batch.forces
    energy_mse = (((predicted["energy"] - batch.energy) / batch.num_atoms) ** 2).mean()
    assert torch.allclose(parts["forces"], error.pow(2).mean())
    assert torch.allclose(loss, energy_mse + 100.0 * error.pow(2).mean())


def test_huber_force_term_is_quadratic_below_delta_and_linear_above():
    error = torch.tensor([[0.004, -0.008, 0.0], [0.5, -2.0, 0.02]], dtype=torch.float64)
    delta = 0.01
    term = force_term(error, "huber", delta)
    assert torch.allclose(term[0], error[0].pow(2).mean())  # all components below δ: the squared error
    linear = torch.where(error[1].abs() <= delta, error[1] ** 2, 2 * delta * error[1].abs() - delta ** 2)
    assert torch.allclose(term[1], linear.mean())
    # continuous with a continuous slope at |e| = δ
    at = torch.tensor([[delta - 1e-9, 0, 0], [delta + 1e-9, 0, 0]], dtype=torch.float64, requires_grad=True)
    force_term(at, "huber", delta).sum().backward()
    assert torch.allclose(at.grad[0, 0], at.grad[1, 0], atol=1e-7)


def test_l2norm_force_term_is_the_mean_error_vector_length():
    batch, predicted = _batch_and_prediction()
    weights = LossWeights(energy=0.0, forces=1.0, forces_loss="l2norm")
    loss, parts = weighted_loss(predicted, batch, weights)
    error = predicted["forces"] - batch.forces
    assert torch.allclose(loss, error.norm(dim=1).mean())
    assert torch.allclose(parts["forces"], error.pow(2).mean())  # the logged part stays the MSE
    # a zero error still has a finite gradient
    zero = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    force_term(zero, "l2norm", 0.01).sum().backward()
    assert torch.isfinite(zero.grad).all()


@pytest.mark.parametrize("kind", ["mse", "huber", "l2norm"])
def test_atoms_without_force_labels_are_left_out(kind):
    batch, predicted = _batch_and_prediction(missing_forces=True)
    weights = LossWeights(energy=0.0, forces=1.0, forces_loss=kind, huber_delta=0.02)
    loss, _ = weighted_loss(predicted, batch, weights)
    labelled = slice(0, 3)
    expected = force_term((predicted["forces"] - batch.forces)[labelled], kind, 0.02).mean()
    assert torch.isfinite(loss) and torch.allclose(loss, expected)


def test_unknown_force_loss_and_bad_delta_are_refused():
    with pytest.raises(ValueError, match="forces_loss must be one of"):
        LossWeights(forces_loss="mae")
    with pytest.raises(ValueError, match="huber_delta must be positive"):
        LossWeights(forces_loss="huber", huber_delta=0.0)


def test_unused_stresses_are_announced_once_and_only_when_unused(caplog):
    import logging

    from mlip.train.loss import unused_stress_note

    labels = {"energy": 10, "forces": 10, "stress": 7}
    with caplog.at_level(logging.INFO):
        unused_stress_note(labels, LossWeights(1.0, 100.0, 0.0))
    notes = [r.getMessage() for r in caplog.records if "carry stresses" in r.getMessage()]
    assert len(notes) == 1 and notes[0].startswith("7 training structures") and "--model.stress_weight" in notes[0]
    caplog.clear()
    with caplog.at_level(logging.INFO):
        unused_stress_note(labels, LossWeights(1.0, 100.0, 10.0))  # fitted: nothing to say
        unused_stress_note({"energy": 10, "forces": 10, "stress": 0}, LossWeights(1.0, 100.0, 0.0))  # none there
    assert not [r for r in caplog.records if "carry stresses" in r.getMessage()]


def test_training_defaults_are_the_measured_recipe():
    """mlip-train without options trains what the accuracy front measured against MACE."""
    from mlip.train.module import PotentialModule

    module = PotentialModule()
    assert module.hparams.model == "equivariant_medium"
    assert module.hparams.plateau_patience == 50 and module.hparams.lr == 0.01
    assert (module.weights.energy, module.weights.forces, module.weights.stress) == (1.0, 100.0, 0.0)
