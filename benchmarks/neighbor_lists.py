"""Neighbour-list libraries side by side: vesin (used by mlip), matscipy, ASE.

    python -m benchmarks.neighbor_lists [--cutoff 5.0]

Systems: rMD17-sized aspirin (21 atoms, no cell) and rattled periodic silicon of 64, 512,
4,096 and 32,768 atoms. Each computes i, j and integer shifts on one core. Reports ms per call and ns per edge;
checks all give the same edge count.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list as ase_neighbor_list

from benchmarks.common import best_time, write_result
import mlip.io
from mlip.graph import neighbor_list

DATA = Path(__file__).resolve().parents[1] / "data"


def systems():
    frame = mlip.io.read(DATA / "rmd17_aspirin_train200.npz")[0]
    # matscipy needs a cell even for a molecule: a 30 Å box, not periodic.
    yield "aspirin", Atoms(numbers=frame.numbers, positions=frame.positions + 15.0, cell=np.eye(3) * 30.0, pbc=False)
    rng = np.random.default_rng(0)
    for repeat in (2, 4, 8, 16):
        atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(repeat)
        atoms.positions += 0.05 * rng.standard_normal(atoms.positions.shape)
        yield f"Si{len(atoms)}", atoms


def candidates(cutoff: float):
    import vesin
    from matscipy.neighbours import neighbour_list

    raw = vesin.NeighborList(cutoff=cutoff, full_list=True, n_threads=1)

    def run_mlip(atoms):  # vesin + grouping by receiver + int64 (what preprocessing uses)
        return neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, cutoff)[0]

    def run_vesin(atoms):
        periodic = bool(atoms.pbc.any())
        return raw.compute(atoms.positions, atoms.cell.array, periodic, "ijS")[0]

    def run_matscipy(atoms):
        return neighbour_list("ijS", atoms, cutoff)[0]

    def run_ase(atoms):
        return ase_neighbor_list("ijS", atoms, cutoff)[0]

    return {"mlip.graph": run_mlip, "vesin": run_vesin, "matscipy": run_matscipy, "ase": run_ase}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cutoff", type=float, default=5.0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = []
    for name, atoms in systems():
        counts = {}
        for library, run in candidates(args.cutoff).items():
            if library == "ase" and len(atoms) > 5000:
                continue  # pure NumPy, minutes at this size
            edges = len(run(atoms))
            seconds = best_time(lambda: run(atoms), repeats=3)
            counts[library] = edges
            rows.append({"system": name, "atoms": len(atoms), "library": library, "edges": edges,
                         "ms_per_call": seconds * 1e3, "ns_per_edge": seconds / max(edges, 1) * 1e9})
            print(f"{name:>9} {library:>9} {edges:>10d} edges {seconds * 1e3:10.3f} ms {rows[-1]['ns_per_edge']:8.1f} ns/edge")
        assert len(set(counts.values())) == 1, f"edge counts differ on {name}: {counts}"
    write_result("neighbor_lists", {"cutoff": args.cutoff, "rows": rows}, args.out)


if __name__ == "__main__":
    main()
