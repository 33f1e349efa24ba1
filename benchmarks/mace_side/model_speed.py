"""MACE side of benchmarks/model_speed.py: run with a MACE venv's python, never imported by mlip.

    .bench/mace/bin/python benchmarks/mace_side/model_speed.py SYSTEM DTYPE

The model of docs/BENCHMARKS.md (ScaleShiftMACE, 32 channels, hidden 32x0e+32x1o, correlation 3,
2 interactions, r_max 5, 8 Bessel functions, radial MLP [64, 64, 64], MACE's defaults otherwise),
random weights (cost does not depend on them). Prints one JSON line with the same fields as
mlip's rows: median energy+forces call on a prebuilt graph, graph time, peak memory.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.systems import aspirin, median_call_seconds, silicon  # noqa: E402  (plain ASE only)


def main() -> None:
    from mace import data, modules, tools  # first: MACE allows e3nn 0.4's constants under torch.load's weights_only
    from e3nn import o3
    from mace.tools import torch_geometric

    system, dtype_name = sys.argv[1], sys.argv[2]
    atoms = aspirin() if system == "aspirin" else silicon(int(system[2:]))
    dtype = getattr(torch, dtype_name)
    torch.set_default_dtype(dtype)  # MACE builds in the default dtype (a separate process: no side effects on mlip)
    torch.manual_seed(0)
    numbers = sorted(set(atoms.numbers.tolist()))
    table = tools.AtomicNumberTable(numbers)
    model = modules.ScaleShiftMACE(
        r_max=5.0, num_bessel=8, num_polynomial_cutoff=5, max_ell=3,
        interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        interaction_cls_first=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        num_interactions=2, num_elements=len(numbers), hidden_irreps=o3.Irreps("32x0e+32x1o"),
        MLP_irreps=o3.Irreps("16x0e"), atomic_energies=np.zeros(len(numbers)), avg_num_neighbors=20.0,
        atomic_numbers=numbers, correlation=3, gate=torch.nn.functional.silu, radial_MLP=[64, 64, 64],
        atomic_inter_scale=1.0, atomic_inter_shift=0.0,
    ).to(dtype).eval()
    for parameter in model.parameters():  # as MACECalculator runs models (and mlip's side its own)
        parameter.requires_grad = False
    start = time.perf_counter()
    config = data.config_from_atoms(atoms)
    loader = torch_geometric.dataloader.DataLoader([data.AtomicData.from_config(config, z_table=table, cutoff=5.0)],
                                                   batch_size=1)
    batch = next(iter(loader)).to_dict()
    graph_ms = (time.perf_counter() - start) * 1e3
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    def call() -> float:
        return model(dict(batch), training=False, compute_force=True)["forces"].sum().item()

    seconds = median_call_seconds(call, len(atoms))
    print(json.dumps({
        "package": "mace", "model": "MACE", "dtype": dtype_name, "system": system, "atoms": len(atoms),
        "edges": int(batch["edge_index"].shape[1]), "ms_per_call": seconds * 1e3, "us_per_atom": seconds * 1e6 / len(atoms),
        "graph_ms": graph_ms, "peak_mem_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline) / 1024,
        "parameters": sum(p.numel() for p in model.parameters()), "torch_threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
