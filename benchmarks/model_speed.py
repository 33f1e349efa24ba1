"""EquivariantPotential forward+backward (energy + forces) cost, spline vs MLP radial, float32 vs
float64, against MACE of comparable size in the same run; also the transformer.

    python -m benchmarks.model_speed [--sizes 64 512 4096] [--mace-python .bench/mace/bin/python]
    python -m benchmarks.model_speed --sizes 512 4096 32768 --variants mlp:float32 --rounds 1 \
        --mace-python .bench/mace/bin/python --mace-max-atoms 4096 --out benchmarks/results/model_speed_sweep.json
    python -m benchmarks.model_speed --variants spline:float32 transformer:float32 --rounds 1 \
        --out benchmarks/results/model_speed_transformer.json

mlip: the `equivariant_medium` preset (32 channels, hidden l ≤ 1, neighbour sum and edge harmonics l ≤ 3 in the first layer, ≤ 2 in the second,
element-dependent product, correlation 3, 2 layers, 5 Å) with its radial set to "spline" or
"mlp" (the preset's own); the CPU MACE model of docs/BENCHMARKS.md (num_channels 32, max_L 1,
max_ell 3, correlation 3, 2 interactions, r_max 5). Each (model, system) runs in its own process: median time of one
energy+forces call on a prebuilt graph (graph building reported apart), and peak memory above
the process's baseline. Rounds alternate mlip and MACE (A B A B); the best round counts.
Variant "transformer" is the `transformer_small` preset (64 wide, 4 heads, 3 layers); a radial
name ending in "+compile" (e.g. "mlp+compile:float32") runs the network under torch.compile
(`mlip.export.compiled.compile_potential`, compiled before the timed calls).
mlip runs with freed memory kept in the process (`mlip.memory.keep_freed_memory`, as every mlip
entry point that loads a model or trains); `--mace-keep-freed-memory` adds MACE rows with the
same glibc setting (environment variables), so that both packages are also compared on equal terms:

    python -m benchmarks.model_speed --sizes 64 512 4096 --variants mlp:float32 \
        --mace-python .bench/mace/bin/python --mace-keep-freed-memory --out benchmarks/results/model_speed_kept_memory.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import write_result

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = [("spline", "float32"), ("mlp", "float32"), ("spline", "float64"), ("mlp", "float64")]


def benchmark_potential(system: str, radial: str, dtype_name: str):
    """(potential, graph batch, graph-building ms, atoms) of one benchmark configuration: the
    `equivariant_medium` preset with `radial` (or `transformer_small`), frozen weights, 5 Å."""
    import torch

    from benchmarks.systems import systems
    from mlip.graph import GraphBatch
    from mlip.io import Frame
    from mlip.models import build_potential
    from mlip.models.presets import load_preset

    atoms = systems()[system] if system in ("aspirin",) else systems((int(system[2:]),))[system]
    if radial == "transformer":
        options = load_preset("transformer_small")
        options.update(avg_num_neighbors=20.0)
    else:
        options = load_preset("equivariant_medium")
        options.update(radial=radial, avg_num_neighbors=20.0)
    dtype = getattr(torch, dtype_name)
    torch.manual_seed(0)
    elements = sorted(set(atoms.numbers.tolist()))
    # frozen weights, as mlip's calculator and simulation engines load models (MACE's side is frozen the same way,
    # as its calculator does)
    potential = build_potential(elements=elements, cutoff=5.0, dtype=dtype, **options).eval().requires_grad_(False)
    frame = Frame(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell.array, pbc=atoms.pbc)
    start = time.perf_counter()
    batch = GraphBatch.from_frames([frame], 5.0).to(dtype=dtype)
    return potential, batch, (time.perf_counter() - start) * 1e3, atoms


def run_one(system: str, radial: str, dtype_name: str) -> dict:
    """Time one configuration in this process (called through --worker)."""
    import torch

    from benchmarks.systems import median_call_seconds
    from mlip.memory import keep_freed_memory

    compiled = radial.endswith("+compile")
    radial = radial.removesuffix("+compile")
    potential, batch, graph_ms, atoms = benchmark_potential(system, radial, dtype_name)
    if compiled:
        from mlip.export.compiled import compile_potential

        potential = compile_potential(potential)
        for _ in range(3):  # compiling happens here, not in the timed calls
            potential(batch, forces=True)["forces"].sum().item()
    keep_freed_memory()
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = median_call_seconds(lambda: potential(batch, forces=True)["forces"].sum().item(), len(atoms))
    model = (radial if radial == "transformer" else f"equivariant-{radial}") + ("+compile" if compiled else "")
    return {"package": "mlip", "model": model, "dtype": dtype_name, "system": system,
            "atoms": len(atoms), "edges": int(batch.receivers.numel()), "ms_per_call": seconds * 1e3,
            "us_per_atom": seconds * 1e6 / len(atoms), "graph_ms": graph_ms,
            "peak_mem_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline) / 1024,
            "parameters": sum(p.numel() for p in potential.parameters()), "torch_threads": torch.get_num_threads()}


def subprocess_json(command: list[str], env: dict[str, str] | None = None) -> list[dict]:
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def mlip_round(system_names: list[str], variants: list[tuple[str, str]]) -> list[dict]:
    rows = []
    for system in system_names:
        for radial, dtype in variants:
            rows += subprocess_json([sys.executable, "-m", "benchmarks.model_speed", "--worker", system, radial, dtype])
            print(f"  mlip {rows[-1]['model']:>20} {dtype} {system:>7}: {rows[-1]['ms_per_call']:9.2f} ms "
                  f"{rows[-1]['us_per_atom']:8.1f} µs/atom", flush=True)
    return rows


# what mlip.memory.keep_freed_memory sets, as glibc's environment variables
KEPT_MEMORY_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**62)}


def mace_round(python: str, system_names: list[str], dtypes: list[str], keep_memory: bool = False) -> list[dict]:
    rows = []
    env = {**os.environ, **KEPT_MEMORY_ENV} if keep_memory else None
    for system in system_names:
        for dtype in dtypes:
            rows += subprocess_json([python, str(ROOT / "benchmarks" / "mace_side" / "model_speed.py"), system, dtype], env)
            if keep_memory:
                rows[-1]["model"] += " (freed memory kept)"
            print(f"  MACE {'kept memory' if keep_memory else '':>20} {dtype} {system:>7}: {rows[-1]['ms_per_call']:9.2f} ms "
                  f"{rows[-1]['us_per_atom']:8.1f} µs/atom", flush=True)
    return rows


def best(rows: list[dict]) -> list[dict]:
    """Per (package, model, dtype, system): the row of the fastest round."""
    chosen: dict[tuple, dict] = {}
    for row in rows:
        key = (row["package"], row["model"], row["dtype"], row["system"])
        if key not in chosen or row["ms_per_call"] < chosen[key]["ms_per_call"]:
            chosen[key] = row
    return list(chosen.values())


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        print(json.dumps(run_one(*sys.argv[2:5])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 512, 4096])
    parser.add_argument("--mace-python", default=None, help="python of a MACE venv (../shared/bench/mace/setup.sh)")
    parser.add_argument("--mace-max-atoms", type=int, default=None,
                        help="skip MACE on larger cells (its memory grows ~0.8 MB per atom: 32,768 atoms would need "
                             "~27 GB)")
    parser.add_argument("--mace-keep-freed-memory", action="store_true",
                        help="also time MACE with freed memory kept in its process, as mlip runs")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=None)
    parser.add_argument("--variants", nargs="+", default=[f"{r}:{d}" for r, d in VARIANTS],
                        help="mlip models as MODEL:DTYPE, MODEL in spline, mlp, transformer")
    args = parser.parse_args()
    variants = [tuple(v.split(":")) for v in args.variants]
    names = ["aspirin"] + [f"Si{n}" for n in args.sizes]
    rows = []
    for round_ in range(args.rounds):
        print(f"round {round_ + 1}/{args.rounds}", flush=True)
        rows += mlip_round(names, variants)
        if args.mace_python:
            mace_names = [n for n in names if args.mace_max_atoms is None or n == "aspirin"
                          or int(n[2:]) <= args.mace_max_atoms]
            dtypes = sorted({dtype for _, dtype in variants} - {"transformer"})
            rows += mace_round(args.mace_python, mace_names, dtypes)
            if args.mace_keep_freed_memory:
                rows += mace_round(args.mace_python, mace_names, dtypes, keep_memory=True)
    write_result("model_speed", {"rows": best(rows), "all_rounds": rows}, args.out)


if __name__ == "__main__":
    main()
