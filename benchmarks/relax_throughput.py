"""Structures relaxed per second: mlip's batched FIRE and torch-sim's FIRE (through
`mlip.integrations.torchsim.MLIPModel`, with its in-flight autobatcher) against ASE's FIRE
(+ FrechetCellFilter) one structure at a time; same model, same convergence criteria.

    python -m benchmarks.relax_throughput --crystal-model front_work/mlearn_si/mlip/equivariant_medium/model.mlip \\
        --molecule-model front_work/acac/mlip/equivariant_medium/model.mlip

Crystals: diamond Si cells of 64 atoms, strained by up to ±3 % (random symmetric strain) and
rattled by 0.05 Å, positions and cell relaxed. Molecules: acetylacetone frames of
data/acac_test_MD_300K_50.xyz (300 K MD snapshots), positions relaxed. Converged when every
force component < fmax (eV/Å) and, for cells, every stress component < smax (eV/Å³). Reports
throughput, speed-up, converged counts, and the largest difference of final energies (meV/atom)
from ASE's. Without models, fresh untrained ones are used (cost is right, step counts are not).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import ase.io
import numpy as np
import torch
from ase.build import bulk

from benchmarks.common import write_result
from mlip.calculator import MLIPCalculator
from mlip.export import load
from mlip.models import build_potential
from mlip.models.presets import load_preset
from mlip.simulate.batched_relax import relax_batch
from mlip.simulate.relax import RelaxResult, relax

DATA = Path(__file__).resolve().parents[1] / "data"


def silicon_cells(count: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    cells = []
    for k in range(count):
        atoms = bulk("Si", "diamond", a=5.468, cubic=True).repeat(2)
        strain = rng.uniform(-0.03, 0.03, (3, 3))
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.5 * (strain + strain.T)), scale_atoms=True)
        atoms.rattle(0.05, seed=seed * 1000 + k)
        cells.append(atoms)
    return cells


def molecules(count: int) -> list:
    frames = ase.io.read(DATA / "acac_test_MD_300K_50.xyz", f":{count}")
    for atoms in frames:
        atoms.calc = None
        atoms.pbc = False
        atoms.cell = np.zeros((3, 3))
    return frames


def _model(path: str | None, elements: list[str]):
    if path:
        return load(path)
    torch.manual_seed(0)
    return build_potential(elements=elements, cutoff=5.0, **load_preset("equivariant_medium")).eval()


def torchsim_relax(potential, structures: list, fmax: float, smax: float, cell: bool, max_steps: int,
                   check_every: int = 5) -> list[RelaxResult]:
    """torch-sim's ASE-flavoured FIRE (frechet_cell_fire with cells), structures swapped out of the
    batch once every force component < fmax (and stress component < smax) at a check."""
    import torch_sim as ts

    from mlip.integrations.torchsim import MLIPModel

    model = MLIPModel(potential, compute_stress=cell)
    init, update = (ts.frechet_cell_fire if cell else ts.optimizers.fire)(model=model)
    states = [init(ts.io.atoms_to_state([atoms], model.device, model.dtype)) for atoms in structures]
    batcher = ts.InFlightAutoBatcher(model, memory_scales_with="n_atoms", max_memory_scaler=100_000,
                                     return_indices=True, max_iterations=-(-max_steps // check_every))
    batcher.load_states(states)
    finished, steps, state, converged = [], np.zeros(len(structures), dtype=int), None, None
    while True:
        state, completed, running = batcher.next_batch(state, converged)
        finished.extend(completed)
        if state is None:
            break
        for _ in range(check_every):
            state = update(state)
        steps[running] += check_every
        largest = torch.zeros(state.n_systems, dtype=state.forces.dtype).scatter_reduce(
            0, state.system_idx, state.forces.abs().amax(dim=1), reduce="amax")
        converged = largest < fmax
        if cell:
            converged = converged & (state.stress.abs().flatten(1).amax(dim=1) < smax)
    results = []
    for relaxed, n_steps in zip(batcher.restore_original_order(finished), steps):
        out = model(relaxed)
        force = float(out["forces"].abs().max())
        stress = float(out["stress"].abs().max()) if cell else float("nan")
        results.append(RelaxResult(relaxed.to_atoms()[0], float(out["energy"][0]), force, stress, int(n_steps),
                                   force < fmax and (not cell or stress < smax)))
    return results


ENGINES = ("mlip_batched", "torchsim", "ase")


def compare(name: str, potential, structures: list, fmax: float, smax: float, cell: bool, max_steps: int,
            chosen: tuple[str, ...] = ENGINES, atoms_per_call: int | None = None) -> dict:
    """One set of structures several ways; final energies compared per structure with ASE's (when run)."""
    n_atoms = len(structures[0])
    timings, results = {}, {}
    engines = {"mlip_batched": lambda: relax_batch(potential, structures, fmax, smax, cell, max_steps,
                                                   atoms_per_call=atoms_per_call),
               "torchsim": lambda: torchsim_relax(potential, structures, fmax, smax, cell, max_steps),
               "ase": lambda: [relax(a, MLIPCalculator(potential), fmax, smax, cell, max_steps=max_steps)
                               for a in structures]}
    engines = {engine: run for engine, run in engines.items() if engine in chosen}
    for engine, run in engines.items():
        start = time.perf_counter()
        results[engine] = run()
        timings[engine] = time.perf_counter() - start
    row = {"name": name, "structures": len(structures), "atoms_each": n_atoms, "relax_cell": cell}
    ase = results.get("ase")
    for engine, done in results.items():
        both = [k for k in range(len(structures)) if ase and done[k].converged and ase[k].converged]
        gaps = [abs(done[k].energy - ase[k].energy) / n_atoms * 1e3 for k in both]
        row.update({f"{engine}_s": timings[engine], f"{engine}_structures_per_s": len(structures) / timings[engine],
                    f"{engine}_converged": sum(r.converged for r in done),
                    f"{engine}_mean_steps": float(np.mean([r.steps for r in done])),
                    f"{engine}_speed_up_over_ase": timings["ase"] / timings[engine] if ase else None,
                    f"{engine}_max_energy_gap_to_ase_meV_per_atom": max(gaps) if gaps else None})
    print(f"{name}: " + "; ".join(
        f"{e} {row[f'{e}_structures_per_s']:.2f}/s ({row[f'{e}_converged']} converged, {row[f'{e}_mean_steps']:.0f} "
        f"steps, {row[f'{e}_speed_up_over_ase'] or float('nan'):.1f}x ASE, max gap "
        f"{row[f'{e}_max_energy_gap_to_ase_meV_per_atom']} meV/atom)" for e in engines), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crystal-model", help="a model knowing Si (default: a fresh untrained one)")
    parser.add_argument("--molecule-model", help="a model knowing H, C, O (default: a fresh untrained one)")
    parser.add_argument("--crystals", type=int, default=64)
    parser.add_argument("--molecules", type=int, default=32)
    parser.add_argument("--fmax", type=float, default=0.02)
    parser.add_argument("--smax", type=float, default=1e-3)
    parser.add_argument("--max-steps", type=int, default=500)
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--atoms-per-call", type=int, help="mlip batched FIRE: most atoms per model call "
                                                           "(default: mlip's for the device)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    engines = tuple(args.engines)
    warnings.filterwarnings("ignore", message="logm result may be inaccurate")  # ASE's Frechet filter, harmless
    rows = []
    if args.crystals:
        rows.append(compare("Si64 cells", _model(args.crystal_model, ["Si"]), silicon_cells(args.crystals), args.fmax,
                            args.smax, True, args.max_steps, engines, args.atoms_per_call))
    if args.molecules:
        rows.append(compare("acac molecules", _model(args.molecule_model, ["H", "C", "O"]), molecules(args.molecules),
                            args.fmax, args.smax, False, args.max_steps, engines, args.atoms_per_call))
    write_result("relax_throughput", {"rows": rows, "threads": torch.get_num_threads(),
                                      "atoms_per_call": args.atoms_per_call,
                                      "models": {"crystal": args.crystal_model, "molecule": args.molecule_model}},
                 args.out)


if __name__ == "__main__":
    main()
