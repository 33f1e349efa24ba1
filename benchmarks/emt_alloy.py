"""A three-element crystal data set for the accuracy front, labelled by ASE's EMT: data none of mlip's
settings were chosen on (the shared sets are one element or rMD17 molecules).

    python -m benchmarks.emt_alloy --out emt_alloy            # writes emt_alloy/train.xyz, emt_alloy/test.xyz
    python -m benchmarks.accuracy_front --train emt_alloy/train.xyz --test emt_alloy/test.xyz --minutes 12 \
        --name emt_alloy --mace-python .bench/mace/bin/python \
        --read-options '{"energy_key": "REF_energy", "forces_key": "REF_forces", "stress_key": "REF_stress"}'
    python -m benchmarks.emt_alloy --kind surface --out emt_surface   # slabs: periodic in x and y only
    python -m benchmarks.emt_alloy --kind liquid --out emt_liquid     # molten cells from EMT Langevin MD

Each bulk structure: a 32-atom fcc Cu-Ni-Au cell (2×2×2 conventional; 50 / 30 / 20 % of the sites drawn at
random), its cell strained by a random matrix (components σ = 2 %) and its atoms displaced (σ = 0.12 Å);
energy (eV), forces (eV/Å) and stress (eV/Å³, ASE's sign) from EMT, under MACE's key names.
Each surface structure (`--kind surface`): a slab of the same alloy, (100) or (111) at random, 2×2 surface
cells and 4–6 layers (16–24 atoms) with 8 Å of vacuum on each side, periodic in the surface plane only
(pbc T T F), one adatom in half of them, strained in plane (σ = 2 %) and displaced (σ = 0.12 Å); energy and
forces only (a stress of a cell that is half vacuum is not a material property).
Each liquid structure (`--kind liquid`): a bulk cell as above expanded by 5 % in volume, then 300 steps of 2 fs
of EMT Langevin MD at 2,500 K (far above EMT copper's melting point, ~1,350 K) from its own random start, the
last frame labelled as the bulk cells are (energy, forces, stress).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ELEMENTS, SHARES = (29, 28, 79), (0.5, 0.3, 0.2)


def slab(rng: np.random.Generator):
    """A random (100) or (111) Cu slab, 2×2 surface cells, 4–6 layers, 8 Å vacuum each side, half with an adatom."""
    from ase.build import add_adsorbate, fcc100, fcc111

    build, site = (fcc100, "hollow") if rng.random() < 0.5 else (fcc111, "fcc")
    atoms = build("Cu", size=(2, 2, int(rng.integers(4, 7))), a=3.7, vacuum=8.0)
    if rng.random() < 0.5:
        add_adsorbate(atoms, "Cu", 1.9, site)
        atoms.center(vacuum=8.0, axis=2)
    atoms.info.pop("adsorbate_info", None)  # ASE's site table: not a label, and extended XYZ cannot hold it
    return atoms


def melt(atoms, rng: np.random.Generator, temperature_K: float = 2500.0, steps: int = 300) -> None:
    """Expand `atoms` (calculator attached) by 5 % in volume and run EMT Langevin MD at `temperature_K`, in place."""
    from ase import units
    from ase.md.langevin import Langevin

    from benchmarks.systems import thermalize

    atoms.set_cell(atoms.cell.array * 1.05 ** (1 / 3), scale_atoms=True)
    thermalize(atoms, temperature_K=temperature_K, rng=rng)
    Langevin(atoms, timestep=2 * units.fs, temperature_K=temperature_K, friction=0.02 / units.fs, rng=rng).run(steps)


def structures(count: int, rng: np.random.Generator, kind: str = "bulk") -> list:
    """`count` EMT-labelled random Cu-Ni-Au structures: ase.Atoms with REF_energy (eV), REF_forces (eV/Å) and,
    for periodic cells, REF_stress (eV/Å³); `kind` "bulk" (strained, rattled crystals), "liquid" (molten cells)
    or "surface" (slabs, pbc T T F)."""
    from ase.build import bulk
    from ase.calculators.emt import EMT

    images = []
    for _ in range(count):
        atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((2, 2, 2)) if kind != "surface" else slab(rng)
        atoms.numbers = rng.choice(ELEMENTS, size=len(atoms), p=SHARES)
        strain = np.eye(3) + rng.normal(0, 0.02, (3, 3))
        if kind == "surface":  # in plane only: the vacuum axis keeps its length and direction
            strain[2], strain[:, 2] = (0.0, 0.0, 1.0), (0.0, 0.0, 1.0)
        atoms.set_cell(atoms.cell.array @ strain, scale_atoms=True)
        atoms.positions += rng.normal(0, 0.12, atoms.positions.shape)
        atoms.calc = EMT()
        if kind == "liquid":
            melt(atoms, rng)
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        if kind != "surface":
            atoms.info["REF_stress"] = atoms.get_stress(voigt=False)
        atoms.calc = None
        atoms.info["REF_energy"] = energy
        atoms.arrays["REF_forces"] = forces
        images.append(atoms)
    return images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for train.xyz and test.xyz")
    parser.add_argument("--train", type=int, default=200, help="training structures (the front takes 10 %% for validation)")
    parser.add_argument("--test", type=int, default=40, help="test structures")
    parser.add_argument("--kind", choices=["bulk", "liquid", "surface"], default="bulk",
                        help="strained crystal cells (default), molten cells, or slabs periodic in the surface plane only")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    import ase.io

    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, count in (("train", args.train), ("test", args.test)):
        ase.io.write(args.out / f"{name}.xyz", structures(count, rng, args.kind), format="extxyz")
    print(f"wrote {args.out / 'train.xyz'} ({args.train}) and {args.out / 'test.xyz'} ({args.test})")


if __name__ == "__main__":
    main()
