"""One training set of several different molecules (rMD17's eight by default) for the accuracy front: a
model must place every molecule's energy at once, which one-molecule sets never ask of its energy offsets.

    python -m benchmarks.mixed_molecules --out mixed_rmd17        # train.xyz, and test_MOLECULE.xyz per molecule
    python -m benchmarks.accuracy_front --train mixed_rmd17/train.xyz --test mixed_rmd17/test_*.xyz \
        --minutes 12 --name mixed_rmd17 --mace-python .bench/mace/bin/python \
        --read-options '{"energy_key": "REF_energy", "forces_key": "REF_forces"}'

Per molecule, `--train` frames drawn at random from its train_01 split and `--test` from its test_01 split
(../shared/data/rmd17; the splits do not overlap), read by `mlip.io` (kcal/mol → eV) and written as extended
XYZ under MACE's key names, with the molecule's name as `config_type`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

MOLECULES = ("aspirin", "benzene", "ethanol", "malonaldehyde", "naphthalene", "salicylic", "toluene", "uracil")


def sample(path: Path, count: int, molecule: str, rng: np.random.Generator) -> list:
    """`count` frames of `path` drawn without replacement, as ase.Atoms with REF_energy (eV) and REF_forces (eV/Å)."""
    import mlip.io

    frames = mlip.io.read(path)
    images = []
    for index in np.sort(rng.choice(len(frames), size=min(count, len(frames)), replace=False)):
        frame = frames[int(index)]
        atoms = frame.to_atoms()
        atoms.calc = None
        atoms.info.update(REF_energy=frame.energy, config_type=molecule)
        atoms.arrays["REF_forces"] = np.asarray(frame.forces)
        images.append(atoms)
    return images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for train.xyz and test_MOLECULE.xyz")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared/data/rmd17")
    parser.add_argument("--molecules", nargs="+", default=list(MOLECULES))
    parser.add_argument("--train", type=int, default=125, help="training frames per molecule (the front takes 10 %% "
                                                               "of the whole set for validation)")
    parser.add_argument("--test", type=int, default=100, help="test frames per molecule")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    import ase.io

    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    train = []
    for molecule in args.molecules:
        train += sample(args.data / f"{molecule}_train_01.npz", args.train, molecule, rng)
        test = sample(args.data / f"{molecule}_test_01.npz", args.test, molecule, rng)
        ase.io.write(args.out / f"test_{molecule}.xyz", test, format="extxyz")
    ase.io.write(args.out / "train.xyz", train, format="extxyz")
    print(f"wrote {args.out / 'train.xyz'} ({len(train)} frames) and {len(args.molecules)} test files "
          f"({args.test} frames each) in {args.out}")


if __name__ == "__main__":
    main()
