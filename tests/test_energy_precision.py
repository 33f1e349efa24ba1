"""Total energies keep float64 precision in a float32 model: molecular DFT reference energies (~ -1,000 eV per
carbon atom) summed in float32 would round a few-hundred-atom total by ~0.1 eV."""

from __future__ import annotations

import copy

import numpy as np
import torch

import mlip
from mlip.graph import GraphBatch
from mlip.io import Frame


def test_float32_totals_with_large_reference_energies_match_float64():
    from benchmarks.systems import aspirin

    molecule = aspirin()
    positions = np.concatenate([molecule.positions + [25.0 * k, 0.0, 0.0] for k in range(15)])  # 315 atoms, apart
    numbers = np.tile(molecule.numbers, 15)
    frame = Frame(numbers=numbers, positions=positions, cell=np.zeros((3, 3)), pbc=False)
    references = {1: -13.6, 6: -1029.4, 8: -2041.2}  # eV, the size of rMD17's per-element energies
    torch.manual_seed(0)
    single = mlip.build_potential(elements=["H", "C", "O"], cutoff=4.0, dtype=torch.float32,
                                  reference_energies=references, **{**mlip.load_preset("equivariant_small"),
                                                                    "channels": 8}).eval()
    double = copy.deepcopy(single).to(torch.float64)
    batch = GraphBatch.from_frames([frame], 4.0)
    e32 = single(batch.to(dtype=torch.float32), forces=False)["energy"]
    e64 = double(batch.to(dtype=torch.float64), forces=False)["energy"]
    assert e32.dtype == torch.float64 and abs(float(e64)) > 2.5e5  # a total where float32's spacing is 0.016 eV
    assert abs(float(e32 - e64)) < 2e-3  # float32 network outputs, float64 sums


def test_evaluation_and_training_compare_energies_in_float64():
    """Labels keep float64 in the batches a float32 model is trained and evaluated on (`GraphBatch.for_model`):
    a model whose predictions are the labels has zero energy error, not float32's rounding of the labels."""
    from benchmarks.systems import aspirin
    from mlip.evaluate.errors import evaluate_potential

    molecule = aspirin()
    frames = [Frame(numbers=np.tile(molecule.numbers, 5), positions=np.concatenate(
        [molecule.positions + [25.0 * k + 0.01 * j, 0.0, 0.0] for k in range(5)]), cell=np.zeros((3, 3)), pbc=False)
        for j in range(3)]
    torch.manual_seed(0)
    potential = mlip.build_potential(elements=["H", "C", "O"], cutoff=4.0, dtype=torch.float32,
                                     reference_energies={1: -13.6, 6: -1029.4, 8: -2041.2},
                                     **{**mlip.load_preset("equivariant_small"), "channels": 8}).eval()
    batch = GraphBatch.from_frames(frames, 4.0)
    batch.energy = potential(batch.for_model(torch.float32), forces=False)["energy"].detach()  # float64 labels
    assert batch.for_model(torch.float32).energy.dtype == torch.float64
    _, _, summary = evaluate_potential(potential, [batch])
    assert summary["energy_mae"] < 1e-2  # meV; a float32 copy of these ~ -88,000 eV labels is off by up to 4 meV
