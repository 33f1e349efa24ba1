"""Compiled training (`mlip.train.compiled_forces`): energies, forces, stress and the loss gradients
with respect to every weight equal eager autograd's (float64 to 1e-9), for a batch of a triclinic
crystal and a molecule, with the ZBL prior and dropout (the same masks); a compiler error is caught by the first-call check;
networks that see whole structures are refused."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from mlip.graph.batch import GraphBatch
from mlip.models import build_potential
from mlip.train.compiled_forces import CompiledForces
from tests.test_compiled import _batch as compiled_inference_batch


def _batch(cutoff: float) -> GraphBatch:
    """A rattled triclinic Cu cell (24 atoms) and methanol, float64 (the compiled-inference tests' batch)."""
    return compiled_inference_batch(SimpleNamespace(cutoff=cutoff))


def _small_model_batch_and_compiled():
    torch.manual_seed(0)
    potential = build_potential("equivariant", ["H", "C", "O", "Cu"], 4.5, dtype=torch.float64, channels=8, lmax=1,
                                avg_num_neighbors=20.0).train()
    return potential, _batch(potential.cutoff), CompiledForces(potential)


def test_compiled_training_forces_stress_and_weight_gradients_match_eager():
    torch.manual_seed(0)
    # with dropout: its masks are drawn in the compiled graph as eagerly (same generator state, same masks), and
    # the first-call check replays them (before, e3nn's Dropout failed to compile and training fell back to eager)
    potential = build_potential("equivariant", ["H", "C", "O", "Cu"], 4.5, dtype=torch.float64, channels=8, lmax=1,
                                avg_num_neighbors=20.0, reference_energies={"H": -1.0, "Cu": -3.0},
                                learn_scale_shift=True, repulsion="zbl", dropout=0.3).train()
    batch = _batch(potential.cutoff)
    compiled = CompiledForces(potential)
    torch.manual_seed(7)
    eager = potential(batch, forces=True, stress=True, create_graph=True)
    torch.manual_seed(7)
    out = compiled(batch, stress=True)
    assert not compiled.eager  # compiled, and it agreed with eager autograd on its first call
    torch.manual_seed(8)
    assert not torch.allclose(potential(batch, forces=True)["forces"], eager["forces"])  # the masks do matter
    for key in ("energy", "node_energy", "forces"):
        torch.testing.assert_close(out[key], eager[key], rtol=0, atol=1e-9)
    torch.testing.assert_close(out["stress"][0], eager["stress"][0], rtol=0, atol=1e-9)
    assert torch.isnan(out["stress"][1]).all()  # the molecule has no volume

    weights = [w for w in potential.parameters() if w.requires_grad]

    def loss(predicted):
        return (predicted["energy"] ** 2).sum() + (predicted["forces"] ** 2).sum() + (predicted["stress"][0] ** 2).sum()

    expected = torch.autograd.grad(loss(eager), weights, allow_unused=True)
    got = torch.autograd.grad(loss(out), weights, allow_unused=True)
    assert sum(g is not None for g in got) == sum(g is not None for g in expected) > 10
    for g, e in zip(got, expected):
        if e is not None:
            torch.testing.assert_close(g, e, rtol=1e-9, atol=1e-10, equal_nan=True)

    # validation: evaluation mode (dropout off) is a graph of its own, checked against eager on its first call too
    potential.eval()
    with torch.no_grad():
        evaluated = compiled(batch, stress=True)
    assert not compiled.eager and {mode for _, mode in compiled.checked} == {True, False}
    torch.testing.assert_close(evaluated["forces"], potential(batch, forces=True)["forces"].detach(), rtol=0, atol=1e-9)


def test_compiled_training_refuses_structure_networks():
    potential = build_potential("transformer", ["H", "C"], 4.0, dim=16, heads=2, num_layers=1, attention="molecule")
    with pytest.raises(ValueError, match="model.compile false"):
        CompiledForces(potential)


def test_a_compiled_graph_that_disagrees_with_eager_falls_back_to_eager():
    potential, batch, compiled = _small_model_batch_and_compiled()

    def wrong(species, vectors, receivers, senders, inputs):  # what a miscompiled graph would return
        node_energy, gradient = compiled._energies_and_edge_gradients(species, vectors, receivers, senders, inputs)
        return node_energy, 1.01 * gradient

    compiled._compiled = wrong
    with pytest.warns(RuntimeWarning, match="training continues eagerly"):
        out = compiled(batch, stress=True)
    assert compiled.eager
    eager = potential(batch, forces=True, stress=True, create_graph=True)
    torch.testing.assert_close(out["forces"], eager["forces"], rtol=0, atol=1e-12)


def test_a_failing_compile_falls_back_to_eager():
    """Where torch.compile cannot run (e.g. no C++ compiler for Inductor), training goes on eagerly."""
    potential, batch, compiled = _small_model_batch_and_compiled()

    def failing(*args):
        raise torch._dynamo.exc.TorchDynamoException("C++ compiler not found")

    compiled._compiled = failing
    with pytest.warns(RuntimeWarning, match="torch.compile failed"):
        out = compiled(batch, stress=True)
    eager = potential(batch, forces=True, stress=True, create_graph=True)
    torch.testing.assert_close(out["forces"], eager["forces"], rtol=0, atol=1e-12)
    assert compiled.eager


def test_validation_without_gradients_reuses_the_training_graph():
    """Calls under no_grad (Lightning's validation) run the graph compiled for training, with gradients
    enabled inside, and return detached outputs equal to eager ones: no second compile."""
    from torch._dynamo.utils import counters

    potential, batch, compiled = _small_model_batch_and_compiled()
    compiled(batch, stress=True)
    graphs = counters["stats"]["unique_graphs"]
    with torch.no_grad():
        out = compiled(batch, stress=True)
    assert counters["stats"]["unique_graphs"] == graphs and not compiled.eager
    assert all(value.grad_fn is None for value in out.values())
    eager = potential(batch, forces=True, stress=True)
    for key in ("energy", "forces"):
        torch.testing.assert_close(out[key], eager[key].detach(), rtol=0, atol=1e-9)
    torch.testing.assert_close(out["stress"][0], eager["stress"][0].detach(), rtol=0, atol=1e-9)


def test_first_call_check_compares_stress_and_batches_without_edges_run_eagerly():
    """The first-call check catches a wrong stress (forces right); a batch of isolated atoms is not
    compiled (it would be a graph of its own) and gets eager autograd's outputs."""
    from torch._dynamo.utils import counters

    from mlip.io.frame import Frame

    potential, batch, compiled = _small_model_batch_and_compiled()
    eager = potential(batch, forces=True, stress=True)
    right = {key: value.detach() for key, value in eager.items()}
    assert compiled._agrees_with_eager(batch, right, stress=True)
    wrong = dict(right, stress=right["stress"] * 1.01)
    with pytest.warns(RuntimeWarning, match="stress differ from eager"):
        assert not compiled._agrees_with_eager(batch, wrong, stress=True)

    isolated = GraphBatch.from_frames([Frame(numbers=[1], positions=[[0.0, 0.0, 0.0]]),
                                       Frame(numbers=[8], positions=[[0.0, 0.0, 0.0]])],
                                      potential.cutoff).to(dtype=torch.float64)
    graphs = counters["stats"]["unique_graphs"]
    out = compiled(isolated)
    assert counters["stats"]["unique_graphs"] == graphs and not compiled.eager
    torch.testing.assert_close(out["energy"], potential(isolated, forces=True)["energy"], rtol=0, atol=1e-12)
    assert torch.equal(out["forces"], torch.zeros(2, 3, dtype=torch.float64))


def test_compiled_training_of_the_neighbour_transformer_matches_eager_without_the_slot_layout():
    """Neighbour attention takes the per-atom slot layout in compiled inference only (`segment_sums_in_training`:
    slower in a compiled training step): compiled training passes none, and its energies, forces and weight
    gradients equal eager autograd's (float64, 1e-9) on a cell whose degree would take the slot path."""
    torch.manual_seed(0)
    potential = build_potential("transformer", ["H", "C", "O", "Cu"], 4.5, dtype=torch.float64, dim=8, heads=2,
                                num_layers=2, avg_num_neighbors=20.0).train()
    assert potential.network.segment_sums and not potential.network.segment_sums_in_training
    batch = _batch(potential.cutoff)
    compiled = CompiledForces(potential)
    eager = potential(batch, forces=True, create_graph=True)
    out = compiled(batch)
    assert not compiled.eager and compiled.checked == {(None, True)}  # compiled, no layout, agreed with eager
    for key in ("energy", "forces"):
        torch.testing.assert_close(out[key], eager[key], rtol=0, atol=1e-9)
    weights = [w for w in potential.parameters() if w.requires_grad]
    expected = torch.autograd.grad((eager["forces"] ** 2).sum(), weights, allow_unused=True)
    got = torch.autograd.grad((out["forces"] ** 2).sum(), weights, allow_unused=True)
    for g, e in zip(got, expected):
        if e is not None:
            torch.testing.assert_close(g, e, rtol=0, atol=1e-9)
