"""Learned equivariance: rotated batches, the rotation-conditioned map, the symmetry objective,
the equivariance measurement, and training with augmentation / the objective through mlip-train."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import mlip.export
import mlip.io
from mlip.graph import GraphBatch
from mlip.evaluate.cli import main as eval_main
from mlip.train.cli import main as train_main
from mlip.evaluate.equivariance import equivariance_errors
from mlip.train.symmetry import RotationConditionedMap, SymmetryObjective, SymmetrySchedule, random_rotations
from tests.physics import CUTOFF
from tests.test_physics import make

ROOT = Path(__file__).resolve().parents[1]
TINY_TRANSFORMER = ("transformer", {"dim": 16, "heads": 2, "num_layers": 2, "avg_num_neighbors": 12.0})
TINY_EQUIVARIANT = ("equivariant", {"channels": 8, "lmax": 2, "num_layers": 2, "avg_num_neighbors": 12.0})


@pytest.fixture(scope="module")
def molecules(data_dir):
    return mlip.io.read(data_dir / "rmd17_aspirin_train200.npz")[:6]


def test_rotated_batch_rotates_edges_forces_and_stress(molecules, emt_extxyz):
    crystals = mlip.io.read(emt_extxyz)[:2]  # labelled with EMT energy, forces, stress
    batch = GraphBatch.from_frames([molecules[0], *crystals], CUTOFF)
    torch.manual_seed(0)
    rotations = random_rotations(batch.num_graphs, torch.float64)
    rotated = batch.rotated(rotations)
    per_edge = rotations[batch.edge_batch]
    assert torch.allclose(rotated.edge_vectors(), torch.einsum("eij,ej->ei", per_edge, batch.edge_vectors()))
    assert torch.allclose(rotated.forces, torch.einsum("nij,nj->ni", rotations[batch.batch], batch.forces),
                          equal_nan=True)
    finite = torch.isfinite(batch.stress).all(dim=(1, 2))
    expected = rotations @ batch.stress @ rotations.transpose(1, 2)
    assert torch.allclose(rotated.stress[finite], expected[finite])
    # An exactly equivariant model sees the same energies and rotated forces.
    model = make(TINY_EQUIVARIANT)
    a, b = model(batch), model(rotated)
    assert torch.allclose(a["energy"], b["energy"], atol=1e-9)
    assert torch.allclose(b["forces"], torch.einsum("nij,nj->ni", rotations[batch.batch], a["forces"]), atol=1e-9)


def test_rotation_conditioned_map_is_orthogonal_and_identity_at_identity():
    torch.manual_seed(0)
    transform = RotationConditionedMap(8).double()
    rotations = torch.cat([torch.eye(3, dtype=torch.float64)[None], random_rotations(4, torch.float64)])
    maps = transform(rotations)
    assert maps.shape == (5, 8, 8)
    assert torch.allclose(maps @ maps.transpose(1, 2), torch.eye(8, dtype=torch.float64).expand(5, 8, 8), atol=1e-10)
    assert torch.allclose(maps[0], torch.eye(8, dtype=torch.float64), atol=1e-12)
    assert not torch.allclose(maps[1], maps[0], atol=1e-3)


def test_schedule_ramps_and_decays():
    schedule = SymmetrySchedule(weight=2.0, warmup_epochs=4, final_fraction=0.5)
    assert schedule.at(0, 11) == pytest.approx(0.5 * (1.0 - 0.0))
    assert schedule.at(3, 11) == pytest.approx(2.0 * (1 - 0.5 * 0.3))
    assert schedule.at(10, 11) == pytest.approx(1.0)
    assert SymmetrySchedule(weight=0.3).at(7, None) == pytest.approx(0.3)
    assert SymmetrySchedule().at(0, 10) == 0.0


@pytest.mark.parametrize("level", ["structure", "atom"])
def test_symmetry_objective_trains_embeddings_towards_equivariance(molecules, level):
    """Minimising the objective alone makes z(Rx) predictable from z(x), for held-out rotations."""
    torch.manual_seed(0)
    potential = make(TINY_TRANSFORMER).train()
    objective = SymmetryObjective(16, projection_dim=8, level=level).double()
    batch = GraphBatch.from_frames(molecules, CUTOFF)
    optimizer = torch.optim.Adam([*potential.parameters(), *objective.parameters()], lr=3e-3)

    def loss(rotations):
        return objective(potential.embed(batch), potential.embed(batch.rotated(rotations)), rotations, batch.batch,
                         batch.num_graphs)

    torch.manual_seed(123)
    held_out = random_rotations(batch.num_graphs, torch.float64)
    with torch.no_grad():
        before = loss(held_out)[0]
    for _ in range(150):
        optimizer.zero_grad()
        value, _ = loss(random_rotations(batch.num_graphs, torch.float64))
        value.backward()
        optimizer.step()
    with torch.no_grad():
        after, parts = loss(held_out)
    assert after < 0.5 * before, (float(before), float(after))


def test_equivariance_errors_separate_exact_from_learned_models(molecules):
    exact = equivariance_errors(make(TINY_EQUIVARIANT), molecules[:3], rotations=8)
    assert exact["energy_std_mev"] < 1e-6 and exact["force_relative_error"] < 1e-9
    untrained = equivariance_errors(make(TINY_TRANSFORMER), molecules[:3], rotations=8)
    assert untrained["energy_std_mev"] > 1e-2 and untrained["force_relative_error"] > 1e-3
    assert untrained["energy_range_mev"] >= untrained["energy_std_mev"]


def _metrics(run):
    return list(csv.DictReader(open(run / "metrics.csv")))


@pytest.mark.parametrize("stop_gradient", [False, True])
def test_training_with_symmetry_objective_and_augmentation(data_dir, tmp_path, stop_gradient):
    run = tmp_path / "run"
    train_main(["--config", str(ROOT / "configs" / "aspirin_transip.yaml"), "--run_dir", str(run),
                "--data.train", str(data_dir / "rmd17_aspirin_train200.npz"), "--data.cutoff", "4.0",
                "--model.model_options", '{"dim": 32, "num_layers": 2}', "--model.lr", "0.003",
                "--model.symmetry_weight", "0.5", "--model.symmetry_warmup_epochs", "2", "--trainer.max_epochs", "3",
                "--model.symmetry_stop_gradient", str(stop_gradient).lower(),
                "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"])
    rows = _metrics(run)
    weights = sorted({float(r["symmetry_weight"]) for r in rows if r.get("symmetry_weight")})
    assert weights == [0.25, 0.5]
    symmetry = [float(r["train_symmetry"]) for r in rows if r.get("train_symmetry")]
    assert symmetry and all(np.isfinite(symmetry))
    maes = [float(r["val_forces_mae"]) for r in rows if r.get("val_forces_mae")]
    assert maes[-1] < maes[0]
    model = mlip.export.load(run / "model.mlip")  # the exported potential carries no training-only head
    assert not any(name.startswith("symmetry") for name in model.state_dict())
    out = tmp_path / "eval"
    assert eval_main([str(run / "model.mlip"), str(data_dir / "rmd17_aspirin_test100.npz"), "--out", str(out),
                      "--equivariance", "4"]) == 0
    measured = json.loads((out / "equivariance.json").read_text())
    assert measured["rotations"] == 4 and measured["force_relative_error"] > 0


@pytest.mark.parametrize("stop_gradient", [False, True])
def test_stop_gradient_detaches_only_the_rotated_view(molecules, stop_gradient):
    from mlip.train.module import PotentialModule

    module = PotentialModule(model="transformer_small", symmetry_weight=0.1, symmetry_stop_gradient=stop_gradient)
    module.potential = make(TINY_TRANSFORMER).float()
    batch = GraphBatch.from_frames(molecules[:2], CUTOFF).to(dtype=torch.float32)
    rotations = random_rotations(2, torch.float32)
    rotated = module.rotated_embedding(batch, rotations)
    assert rotated.requires_grad is (not stop_gradient)
    original = module.potential.embed(batch)
    assert original.requires_grad  # the original view always trains
    # Same values either way: only the gradient path differs.
    torch.testing.assert_close(rotated.detach(), module.potential.embed(batch.rotated(rotations)).detach())


def test_symmetry_objective_refuses_equivariant_network(data_dir, tmp_path, capsys):
    with pytest.raises(SystemExit, match="2"):
        train_main(["--run_dir", str(tmp_path / "run"), "--data.train", str(data_dir / "rmd17_aspirin_train200.npz"),
                    "--data.cutoff", "4.0", "--model.model", "equivariant_small", "--model.symmetry_weight", "1.0",
                    "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false"])
    assert "transformer" in capsys.readouterr().err
