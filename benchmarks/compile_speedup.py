"""Compiled against eager inference in one process, calls interleaved: a speed-up that this
machine's drifting speed (up to 30 % between runs of one eager call) cannot fake.

    python -m benchmarks.compile_speedup --systems aspirin Si64 Si512 Si4096 \
        --out benchmarks/results/compile_speedup.json

Per system: the `equivariant_medium` benchmark model of `benchmarks.model_speed` (or with `--model
transformer_small` the transformer's; frozen weights, float32 unless `--dtype`), compiled with `mlip.export.compiled.compile_potential` (compile time
reported: the first call of a new degree bucket), then `--pairs` pairs of energy+forces calls,
eager and compiled one after the other (their order alternating; with `--untabulated` / `--unfused` the model
compiled without radial tables / without the fused C kernel joins each round and that lever's own speed-up is
reported). Reported: the median call
of each, the median of the per-pair ratios eager/compiled, µs per atom-step, and whether the
compiled forces equal eager ones (max |ΔF| in eV/Å); the process's peak resident memory so far
(each system runs in the same process: give one system per call to read one system's memory).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

from benchmarks.common import write_result


# other compiled variants a run can time beside the default one: name → compile_potential options, what it lacks
VARIANTS = {"untabulated": ({"radial_tables": False}, "radial tables"),
            "unfused": ({"fused_kernel": False}, "the fused C kernel")}


def measure(system: str, radial: str, dtype_name: str, pairs: int, variants: tuple[str, ...] = ()) -> dict:
    import torch

    from benchmarks.model_speed import benchmark_potential
    from mlip.export.compiled import compile_potential
    from mlip.memory import keep_freed_memory

    keep_freed_memory()
    # every compiled copy of the network shares one code object and so torch's limit of 8 graphs per code object:
    # three copies (default, --untabulated, --unfused) over four systems' degree buckets exceed it, and the graphs
    # beyond it would run eagerly. Room for them, in this benchmark only (a user compiles one model).
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
    potential, batch, _, atoms = benchmark_potential(system, radial, dtype_name)
    compiled = compile_potential(potential)
    others = {name: compile_potential(potential, **VARIANTS[name][0]) for name in variants}

    def call(model) -> tuple[float, torch.Tensor]:
        start = time.perf_counter()
        forces = model(batch, forces=True)["forces"]
        forces.sum().item()
        return time.perf_counter() - start, forces

    # the variants compile first: a network compiled after another variant of itself in one process can get slower
    # code (Si 512, 2026-12-07: without the fused kernel 56 ms compiled second, 37–42 ms first or alone)
    other_forces = {name: call(model)[1] for name, model in others.items()}
    compile_s, compiled_forces = call(compiled)
    _, eager_forces = call(potential)
    models = {"eager": potential, "compiled": compiled, **others}
    for _ in range(2):  # warm all
        for model in models.values():
            call(model)
    times: dict[str, list[float]] = {name: [] for name in models}
    names = list(models)
    for k in range(pairs):  # each round calls every model, the order rotating
        for name in names[k % len(names):] + names[:k % len(names)]:
            times[name].append(call(models[name])[0])
    eager, fast = times["eager"], times["compiled"]
    ratios = [e / c for e, c in zip(eager, fast)]
    row = {"system": system, "atoms": len(atoms), "edges": int(batch.receivers.numel()), "radial": radial,
           "dtype": dtype_name, "pairs": pairs, "compile_s": compile_s,
           "eager_ms": statistics.median(eager) * 1e3, "compiled_ms": statistics.median(fast) * 1e3,
           "speedup_median_of_pairs": statistics.median(ratios), "speedup_min": min(ratios), "speedup_max": max(ratios),
           "compiled_us_per_atom": statistics.median(fast) * 1e6 / len(atoms),
           "max_force_difference": float((compiled_forces - eager_forces).abs().max()),
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "torch_threads": torch.get_num_threads()}
    print(f"{system:>8}: eager {row['eager_ms']:8.2f} ms, compiled {row['compiled_ms']:8.2f} ms "
          f"({row['compiled_us_per_atom']:.0f} µs/atom), speed-up {row['speedup_median_of_pairs']:.2f}× "
          f"(pairs {row['speedup_min']:.2f}–{row['speedup_max']:.2f}), compile {compile_s:.0f} s, "
          f"max |ΔF| {row['max_force_difference']:.1e} eV/Å", flush=True)
    for name in variants:  # the same model compiled without one of the default's levers
        plain = times[name]
        row.update({f"{name}_ms": statistics.median(plain) * 1e3,
                    f"{name}_speedup_median_of_rounds": statistics.median(u / c for u, c in zip(plain, fast)),
                    f"{name}_max_force_difference": float((other_forces[name] - eager_forces).abs().max())})
        if name == "untabulated":  # the key of the 2026-12-07 results
            row["table_speedup_median_of_rounds"] = row["untabulated_speedup_median_of_rounds"]
        print(f"{'':>8}  compiled without {VARIANTS[name][1]} {row[name + '_ms']:8.2f} ms: its speed-up "
              f"{row[name + '_speedup_median_of_rounds']:.2f}×, max |ΔF| {row[name + '_max_force_difference']:.1e} eV/Å")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", nargs="+", default=["aspirin", "Si64", "Si512", "Si4096"])
    parser.add_argument("--model", default="equivariant_medium", choices=["equivariant_medium", "transformer_small"])
    parser.add_argument("--radial", default="mlp", choices=["mlp", "spline"], help="the equivariant model's radial")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--pairs", type=int, default=None, help="call pairs per system (default: 3000 / atoms, 5–40)")
    parser.add_argument("--untabulated", action="store_true",
                        help="also time the compiled model without radial tables (compile_potential(radial_tables=False))")
    parser.add_argument("--unfused", action="store_true",
                        help="also time the compiled model without the fused C kernel (compile_potential(fused_kernel=False))")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.model == "transformer_small" and (args.untabulated or args.unfused):
        parser.error("--untabulated and --unfused are levers of the equivariant model (the transformer has neither)")
    from benchmarks.systems import systems

    rows = []
    for system in args.systems:
        n_atoms = len(systems()[system]) if system == "aspirin" else int(system[2:])
        pairs = args.pairs or max(5, min(40, 3000 // n_atoms))
        variants = tuple(name for name in VARIANTS if getattr(args, name))
        model = "transformer" if args.model == "transformer_small" else args.radial  # benchmark_potential's key
        rows.append({"model": args.model, **measure(system, model, args.dtype, pairs, variants)})
    write_result("compile_speedup", {"rows": rows}, args.out)


if __name__ == "__main__":
    main()
