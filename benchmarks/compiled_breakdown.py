"""Where a compiled energy + forces call spends its time: each part of the network replaced in turn by
a stand-in of the same shapes that costs almost nothing, and the call timed again.

    python -m benchmarks.compiled_breakdown --system Si512 --rounds 2 \
        --out benchmarks/results/compiled_breakdown_1207.json

Parts (`STAND_INS`), each replaced for the whole network (both layers):
- "radial": the Bessel + MLP radial functions become the basis times the envelope times one 8-wide linear
  map (the output keeps its shape, (P, paths·C), so only the MLP's hidden layers and their gradients go), and
  their tables (which compiled float32 calls read since 2026-12-07, `mlip.nn.radial_table`) r times one row;
- "neighbour_sum": the per-atom neighbour sums read the first of each atom's D slots only (1/D of the work);
- "product": the many-body product basis passes A's copies through (no tensor products);
- "all": the three at once.

Since 2026-12-08 the model runs the fused C kernels (`mlip/nn/kernels/`): the radial and neighbour-sum stand-ins
take the table, and so the convolution kernel, away, and measure the Inductor path instead (slower than the
model); only the product stand-in still bounds a part of the default compiled call.

The stand-ins compute a wrong model and exist only for this measurement: the time a part saves when it
stands in bounds what any faster kernel for that part could gain. Each variant runs in its own process (the
stand-ins patch classes before compiling) and is compiled before its timed calls
(`mlip.export.compiled.compile_potential`); rounds repeat the variants in the same order and the best
round's median counts, as this machine's speed drifts by up to 30 % between runs. The model is the
`equivariant_medium` benchmark potential of `benchmarks.model_speed` (frozen weights, float32).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from benchmarks.common import write_result

STAND_INS = ("none", "radial", "neighbour_sum", "product", "all")


def install_stand_ins(part: str) -> None:
    """Patch the network classes so that `part` (one of STAND_INS) costs almost nothing."""
    import torch

    from mlip.nn.product import ProductBasis
    from mlip.nn.radial import BesselMLPRadial
    from mlip.nn.radial_table import TabulatedRadial, hermite_coefficients
    from mlip.nn.segments import NeighbourSegments

    if part in ("radial", "all"):
        def radial(self, r: torch.Tensor) -> torch.Tensor:
            features = self.basis(r) * self.envelope(r).unsqueeze(-1)
            return features @ self.mlp[-1].weight[:, :features.shape[1]].t()
        BesselMLPRadial.forward = radial

        def table(self, r: torch.Tensor) -> torch.Tensor:  # compiled float32 calls read the radial's table
            return r.unsqueeze(-1) * self.coefficients[0, 0]

        def unchecked(cls, function, cutoff: float, *args, **kwargs) -> TabulatedRadial:  # (the check calls it)
            return cls(hermite_coefficients(function, cutoff, 1024), cutoff)
        TabulatedRadial.forward, TabulatedRadial.build = table, classmethod(unchecked)
    if part in ("neighbour_sum", "all"):
        def first_slot(self, left: torch.Tensor, weight: torch.Tensor, component: torch.Tensor) -> torch.Tensor:
            p, _, k, width = left.shape
            channels, n, d = weight.shape[-1], self.num_nodes, self.degree
            terms = (left.reshape(p, n, d, k, width, 1)[:, :, :1] * weight.reshape(p, n, d, 1, 1, channels)[:, :, :1]
                     * component.reshape(1, n, d, k, 1, channels)[:, :, :1])
            return terms.sum(dim=(2, 3))
        NeighbourSegments.fused_neighbour_sum = first_slot
    if part in ("product", "all"):
        def copies(self, a: torch.Tensor, species_onehot: torch.Tensor | None = None) -> torch.Tensor:
            width = (self.lmax_out + 1) ** 2
            stacked = torch.stack([a[:, :, :width]] * (len(self.products) + 1), dim=2)
            return self.linear([stacked[..., l * l:(l + 1) ** 2] for l in range(self.lmax_out + 1)])
        ProductBasis.forward = copies


def measure(system: str, part: str, calls: int) -> dict:
    """Median ms of `calls` compiled energy + forces calls with `part` standing in (in this process)."""
    import statistics

    install_stand_ins(part)
    from benchmarks.model_speed import benchmark_potential
    from mlip.export.compiled import compile_potential
    from mlip.memory import keep_freed_memory

    keep_freed_memory()
    potential, batch, _, atoms = benchmark_potential(system, "mlp", "float32")
    compiled = compile_potential(potential)
    start = time.perf_counter()
    compiled(batch, forces=True)["forces"].sum().item()
    compile_s = time.perf_counter() - start
    for _ in range(3):
        compiled(batch, forces=True)["forces"].sum().item()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        compiled(batch, forces=True)["forces"].sum().item()
        times.append(time.perf_counter() - start)
    return {"system": system, "part": part, "atoms": len(atoms), "calls": calls, "compile_s": compile_s,
            "median_ms": statistics.median(times) * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", default="Si512")
    parser.add_argument("--parts", nargs="+", default=list(STAND_INS), choices=STAND_INS)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--calls", type=int, default=9)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a child process: one part, JSON on stdout
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.system, args.one, args.calls)))
        return
    rows: dict[str, list[dict]] = {part: [] for part in args.parts}
    for round_index in range(args.rounds):
        for part in args.parts:
            child = subprocess.run([sys.executable, "-m", "benchmarks.compiled_breakdown", "--system", args.system,
                                    "--one", part, "--calls", str(args.calls)], capture_output=True, text=True, check=True)
            row = json.loads(child.stdout.strip().splitlines()[-1])
            rows[part].append(row)
            print(f"round {round_index + 1}: {part:>13} stands in: {row['median_ms']:7.2f} ms "
                  f"(compile {row['compile_s']:.0f} s)", flush=True)
    best = {part: min(r["median_ms"] for r in runs) for part, runs in rows.items()}
    full = best.get("none")
    summary = []
    for part, ms in best.items():
        entry = {"part": part, "best_median_ms": ms, "us_per_atom_step": ms * 1e3 / rows[part][0]["atoms"]}
        if full is not None and part != "none":
            entry["saved_ms"], entry["saved_share"] = full - ms, (full - ms) / full
        summary.append(entry)
        saved = f", saves {entry['saved_ms']:.1f} ms ({entry['saved_share']:.0%})" if "saved_ms" in entry else ""
        print(f"{part:>13}: {ms:7.2f} ms, {entry['us_per_atom_step']:.0f} µs/atom-step{saved}")
    if args.out:
        write_result("compiled_breakdown", {"system": args.system, "rounds": rows, "summary": summary}, args.out)


if __name__ == "__main__":
    main()
