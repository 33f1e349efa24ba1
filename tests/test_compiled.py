"""Compiled inference and the exported energy program agree with eager mode: energies, forces and
stresses in float64 to 1e-9 on a triclinic cell and a molecule, batched."""

from __future__ import annotations

import copy
import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

from mlip.graph.batch import GraphBatch
from mlip.io import Frame
from mlip.models import build_potential


def _potential():
    torch.manual_seed(0)
    return build_potential("equivariant", ["H", "C", "O", "Cu"], 4.5, dtype=torch.float64, channels=8, lmax=1,
                           avg_num_neighbors=20.0, reference_energies={"H": -1.0, "Cu": -3.0}).eval()


def _batch(potential):
    cell = bulk("Cu", "fcc", a=3.6).repeat((2, 2, 3))
    cell.set_cell(cell.cell.array @ (np.eye(3) + 0.04 * np.random.default_rng(0).standard_normal((3, 3))),
                  scale_atoms=True)
    cell.rattle(0.05, seed=1)
    methanol = molecule("CH3OH")
    frames = [Frame(numbers=a.numbers, positions=a.positions, cell=a.cell.array, pbc=a.pbc) for a in (cell, methanol)]
    return GraphBatch.from_frames(frames, potential.cutoff).to(dtype=torch.float64)


def test_exported_program_matches_eager(tmp_path):
    from mlip.export.compiled import ExportedPotential, export_energy_program

    potential = _potential()
    batch = _batch(potential)
    eager = potential(batch, forces=True, stress=True)
    path = export_energy_program(potential, tmp_path / "model.pt2")
    exported = ExportedPotential(path)
    out = exported(batch.numbers, batch.positions, batch.cell, batch.receivers, batch.senders,
                   batch.shifts.to(torch.float64), batch.batch, batch.ptr)
    torch.testing.assert_close(out["energy"], eager["energy"].detach(), rtol=0, atol=1e-9)
    torch.testing.assert_close(out["forces"], eager["forces"], rtol=0, atol=1e-9)
    torch.testing.assert_close(out["stress"][0], eager["stress"][0], rtol=0, atol=1e-9)
    assert exported.metadata["atomic_numbers"] == [1, 6, 8, 29] and exported.cutoff == 4.5
    single = GraphBatch.from_frames([Frame(numbers=[29, 29, 29, 29], positions=bulk("Cu", "fcc", a=3.6, cubic=True).positions
                                           + 0.05, cell=np.eye(3) * 3.6, pbc=True)], 4.5).to(dtype=torch.float64)
    one = exported(single.numbers, single.positions, single.cell, single.receivers, single.senders,
                   single.shifts.to(torch.float64), single.batch, single.ptr)  # one structure: what an engine sends
    torch.testing.assert_close(one["forces"], potential(single, forces=True)["forces"], rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="not in this model"):
        exported(torch.tensor([26, 26]), batch.positions[:2], batch.cell[:1], batch.receivers[:0], batch.senders[:0],
                 batch.shifts[:0].to(torch.float64), torch.zeros(2, dtype=torch.long), torch.tensor([0, 2]))


def test_compiled_potential_matches_eager():
    """Also: structures of other neighbour counts, one after another (what MD and relaxations of
    different cells send to one compiled model), stay exact: no size or stride baked into the graph
    but the degree bucket of the per-receiver layout (the first batch → 40; 26 → 32; 42, 44 → 48)."""
    from mlip.export.compiled import compile_potential

    potential = _potential()
    batch = _batch(potential)
    eager = potential(batch, forces=True, stress=True)
    compiled = compile_potential(potential)
    for _ in range(2):  # the second call reuses the compiled graph
        out = compiled(batch, forces=True, stress=True)
    torch.testing.assert_close(out["energy"], eager["energy"], rtol=0, atol=1e-9)
    torch.testing.assert_close(out["forces"], eager["forces"], rtol=0, atol=1e-9)
    torch.testing.assert_close(out["stress"][0], eager["stress"][0], rtol=0, atol=1e-9)
    from mlip.nn.segments import NeighbourSegments

    buckets = {NeighbourSegments.compiled_layout(batch.receivers, len(batch.numbers))[1].shape[0]}
    for lattice, a in [("bcc", 2.9), ("fcc", 3.4), ("bcc", 2.7)]:  # 26, 42, 44 neighbours
        atoms = bulk("Cu", lattice, a=a).repeat((3, 3, 3))
        atoms.rattle(0.05, seed=2)
        other = GraphBatch.from_frames([Frame(numbers=atoms.numbers, positions=atoms.positions,
                                              cell=atoms.cell.array, pbc=True)], potential.cutoff).to(dtype=torch.float64)
        layout = NeighbourSegments.compiled_layout(other.receivers, len(other.numbers))
        assert layout is not None  # the compiled network gets the per-receiver layout, not the scatter fallback
        buckets.add(layout[1].shape[0])
        out, reference = compiled(other, forces=True, stress=True), potential(other, forces=True, stress=True)
        for key in ("energy", "forces", "stress"):
            torch.testing.assert_close(out[key], reference[key], rtol=0, atol=1e-9)
    assert buckets == {32, 40, 48}
    assert copy.copy(compiled.network).num_species == potential.network.num_species  # attributes forwarded


def test_compiled_float32_calls_with_radial_tables_match_eager_and_follow_the_weights():
    """The Bessel + MLP radials run from their tables (`compile_potential(radial_tables=True)`, float32, frozen
    weights): forces within float32 rounding of the eager MLP, also after the weights change in place; the
    original network's radials carry no table."""
    from mlip.export.compiled import compile_potential
    from mlip.nn import tabulated_convolution as fused
    from mlip.nn.radial import BesselMLPRadial

    torch.manual_seed(0)
    potential = build_potential("equivariant", ["H", "C", "O", "Cu"], 4.5, channels=8, lmax=1, radial="mlp",
                                avg_num_neighbors=20.0, dtype=torch.float32).eval().requires_grad_(False)
    batch = _batch(potential).to(dtype=torch.float32)
    compiled = compile_potential(potential)
    radials = [m for m in compiled.network.network.modules() if isinstance(m, BesselMLPRadial)]
    assert radials and all(m.inference_table is not None for m in radials)
    assert not any("inference_table" in vars(m) for m in potential.network.modules())
    with torch.profiler.profile() as profile:
        compiled(batch, forces=True)
    if fused.available(*compiled.network.network.blocks[0].conv.kernel_shape):  # the C kernels ran, both ways
        ran = {event.name for event in profile.events()}
        assert {"mlip::tabulated_convolution", "mlip::tabulated_convolution_backward", "mlip::channelwise_product",
                "mlip::channelwise_product_backward"} <= ran
    for step in range(2):
        out, eager = compiled(batch, forces=True, stress=True), potential(batch, forces=True, stress=True)
        scale = eager["forces"].abs().max().item()
        torch.testing.assert_close(out["forces"], eager["forces"], rtol=0, atol=2e-5 * scale)
        torch.testing.assert_close(out["energy"], eager["energy"], rtol=1e-5, atol=1e-5)
        stress_scale = eager["stress"][0].abs().max().item()  # the periodic cell's (the molecule has none)
        torch.testing.assert_close(out["stress"][0], eager["stress"][0], rtol=0, atol=2e-5 * stress_scale)
        with torch.no_grad():  # new weights, as after loading others: the tables are rebuilt before the next call
            for m in radials:
                m.mlp[-1].weight.mul_(1.5)


def test_compiled_model_runs_the_framework_path_where_the_kernels_do_not_build(monkeypatch):
    """A failed kernel build (no compiler, a compiler without OpenMP...) leaves the compiled model correct: the
    layers keep Inductor's code, and the network pairs its edges again."""
    from mlip.export.compiled import compile_potential
    from mlip.nn import fused_product
    from mlip.nn import tabulated_convolution as fused

    monkeypatch.setattr(fused, "_library", lambda *shape: None)
    monkeypatch.setattr(fused_product, "_library", lambda *shape: None)
    torch.manual_seed(0)
    potential = build_potential("equivariant", ["H", "C", "O", "Cu"], 4.5, channels=8, lmax=1, radial="mlp",
                                avg_num_neighbors=20.0, dtype=torch.float32).eval().requires_grad_(False)
    batch = _batch(potential).to(dtype=torch.float32)
    compiled = compile_potential(potential)
    assert compiled.network.accepts_edge_pairs
    with torch.profiler.profile() as profile:
        out = compiled(batch, forces=True)
    assert not any(event.name.startswith(("mlip::tabulated", "mlip::channelwise")) for event in profile.events())
    eager = potential(batch, forces=True)
    torch.testing.assert_close(out["forces"], eager["forces"], rtol=0, atol=2e-5 * eager["forces"].abs().max().item())


def test_gather_rows_operator_matches_index_select_with_its_derivatives():
    """The custom gather used under torch.compile: values, first and second derivatives (float64)."""
    from mlip.nn import gather

    x = torch.randn(6, 3, 2, dtype=torch.float64, requires_grad=True)
    index = torch.tensor([0, 5, 5, 2, 0, 1, 3])
    torch.testing.assert_close(gather._gather_rows(x, index), x.index_select(0, index), rtol=0, atol=0)
    assert torch.autograd.gradcheck(lambda t: gather._gather_rows(t, index), (x,))
    assert torch.autograd.gradgradcheck(lambda t: gather._gather_rows(t, index), (x,))
    values = torch.randn(7, 3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: gather._scatter_rows(v, index, 6), (values,))
    torch.library.opcheck(gather._gather_rows, (x, index))
    torch.library.opcheck(gather._scatter_rows, (values, index, 6))
    compiled = torch.compile(lambda t: (gather.gather_rows(t, index) ** 2).sum(), dynamic=True)
    grad, = torch.autograd.grad(compiled(x), x)
    torch.testing.assert_close(grad, torch.zeros_like(x).index_add(0, index, 2 * x.index_select(0, index)),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("options", [{"attention": "edge", "edge_dim": 4, "num_layers": 1},
                                     {"attention": "neighbor", "edge_filter": True, "num_layers": 2},
                                     {"attention": "neighbor", "attention_weights": "silu", "num_layers": 1}],
                         ids=["edge-tokens", "neighbour-attention", "neighbour-attention-silu"])
def test_compiled_transformer_matches_eager(options):
    """The transformer reads the per-atom layout that the compiled wrapper builds before each call: edge tokens
    always (whatever the padding: `tests/test_layers.py`), neighbour attention where it pays, its softmax and
    sums then dense over each atom's slots (from degree bucket 32; eagerly: scatter sums). A molecule beside a triclinic crystal gives
    the energies, forces and stress of eager mode (float64, 1e-9)."""
    from mlip.export.compiled import compile_potential
    from mlip.models.transformer import SLOT_ATTENTION_MIN_DEGREE
    from mlip.nn.segments import NeighbourSegments

    torch.manual_seed(0)
    potential = build_potential("transformer", ["H", "C", "O", "Cu"], 4.5, dtype=torch.float64, dim=8, heads=2,
                                avg_num_neighbors=20.0, **options).eval()
    batch = _batch(potential)
    layout = NeighbourSegments.compiled_layout(batch.receivers, len(batch.numbers))
    assert layout is not None and layout[1].shape[0] >= SLOT_ATTENTION_MIN_DEGREE  # neighbour attention's slot path runs
    eager = potential(batch, forces=True, stress=True)
    out = compile_potential(potential)(batch, forces=True, stress=True)
    for key in ("energy", "forces"):
        torch.testing.assert_close(out[key], eager[key], rtol=0, atol=1e-9)
    torch.testing.assert_close(out["stress"][0], eager["stress"][0], rtol=0, atol=1e-9)


def test_export_refuses_the_edge_token_transformer_in_one_line(tmp_path):
    from mlip.export.compiled import export_energy_program

    potential = build_potential("transformer", ["Cu"], 4.5, dtype=torch.float64, dim=8, heads=2, num_layers=1,
                                attention="edge", edge_dim=4)
    with pytest.raises(ValueError, match="attention='edge'"):
        export_energy_program(potential, tmp_path / "edge.pt2")
    assert not (tmp_path / "edge.pt2").exists()
