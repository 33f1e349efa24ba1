"""A three-element crystal data set for the accuracy front, labelled by ASE's EMT: data none of mlip's
settings were chosen on (the shared sets are one element or rMD17 molecules).

    python -m benchmarks.emt_alloy --out emt_alloy            # writes emt_alloy/train.xyz, emt_alloy/test.xyz
    python -m benchmarks.accuracy_front --train emt_alloy/train.xyz --test emt_alloy/test.xyz --minutes 12 \
        --name emt_alloy --mace-python .bench/mace/bin/python \
        --read-options '{"energy_key": "REF_energy", "forces_key": "REF_forces", "stress_key": "REF_stress"}'

Each structure: a 32-atom fcc Cu-Ni-Au cell (2×2×2 conventional; 50 / 30 / 20 % of the sites drawn at
random), its cell strained by a random matrix (components σ = 2 %) and its atoms displaced (σ = 0.12 Å);
energy (eV), forces (eV/Å) and stress (eV/Å³, ASE's sign) from EMT, under MACE's key names.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ELEMENTS, SHARES = (29, 28, 79), (0.5, 0.3, 0.2)


def structures(count: int, rng: np.random.Generator) -> list:
    """`count` EMT-labelled random Cu-Ni-Au cells (ase.Atoms with REF_energy, REF_forces, REF_stress)."""
    from ase.build import bulk
    from ase.calculators.emt import EMT

    images = []
    for _ in range(count):
        atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((2, 2, 2))
        atoms.numbers = rng.choice(ELEMENTS, size=len(atoms), p=SHARES)
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + rng.normal(0, 0.02, (3, 3))), scale_atoms=True)
        atoms.positions += rng.normal(0, 0.12, atoms.positions.shape)
        atoms.calc = EMT()
        energy, forces, stress = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(voigt=False)
        atoms.calc = None
        atoms.info["REF_energy"], atoms.info["REF_stress"] = energy, stress
        atoms.arrays["REF_forces"] = forces
        images.append(atoms)
    return images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for train.xyz and test.xyz")
    parser.add_argument("--train", type=int, default=200, help="training structures (the front takes 10 %% for validation)")
    parser.add_argument("--test", type=int, default=40, help="test structures")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    import ase.io

    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, count in (("train", args.train), ("test", args.test)):
        ase.io.write(args.out / f"{name}.xyz", structures(count, rng), format="extxyz")
    print(f"wrote {args.out / 'train.xyz'} ({args.train}) and {args.out / 'test.xyz'} ({args.test})")


if __name__ == "__main__":
    main()
