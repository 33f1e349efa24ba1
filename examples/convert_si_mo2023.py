"""Convert the DFT silicon sets of Liu, He & Mo 2023 to extended XYZ that mlip reads.

    python examples/convert_si_mo2023.py ../shared/data/si_mo2023 --out si_xyz/
    mlip-preprocess si_xyz/Vacancy-enhanced_Training_Set.xyz --cutoff 5 --out shards/si_vac

Each folder of the source holds `structure_poscars.zip` (`<index>.POSCAR.vasp`) and
`DATA.json` with `Energies.DFT_K4[index]` (eV per cell) and `Forces.DFT_K4[index]` (eV/Å,
one row per atom, POSCAR order). No stresses. This is the typical custom format a user has to
convert: the script checks that every structure has its labels and that shapes agree, and
names the folder and index when they do not.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import zipfile
from pathlib import Path

import ase.io
import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator

from mlip.io import InvalidStructureError


def convert_folder(folder: Path, out: Path) -> int:
    """Write `out` (extxyz with energy and forces) from one source folder; returns the frame count."""
    labels = json.loads((folder / "DATA.json").read_text())
    energies, forces = labels["Energies"]["DFT_K4"], labels["Forces"]["DFT_K4"]
    frames = []
    with zipfile.ZipFile(folder / "structure_poscars.zip") as archive:
        names = {int(re.match(r"(\d+)\.POSCAR", Path(n).name).group(1)): n
                 for n in archive.namelist() if re.match(r"\d+\.POSCAR", Path(n).name)}
        if len(names) != len(energies):
            raise InvalidStructureError(f"{len(names)} POSCARs but {len(energies)} energies", str(folder))
        for index in sorted(names):
            atoms = ase.io.read(io.StringIO(archive.read(names[index]).decode()), format="vasp")
            f = np.asarray(forces[index], dtype=float)
            if f.shape != (len(atoms), 3):
                raise InvalidStructureError(f"forces of shape {f.shape} for {len(atoms)} atoms", str(folder), index)
            atoms.calc = SinglePointCalculator(atoms, energy=float(energies[index]), forces=f)
            atoms.info["config_type"] = folder.name
            frames.append(atoms)
    ase.io.write(out, frames, format="extxyz")
    return len(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the si_mo2023 folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for the .xyz files")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for folder in sorted(p for p in args.source.iterdir() if (p / "DATA.json").exists()):
        target = args.out / f"{folder.name}.xyz"
        print(f"{folder.name}: {convert_folder(folder, target)} structures -> {target}")
    print(f"next: mlip-preprocess {args.out}/<set>.xyz --cutoff 5.0 --out shards/<set>")


if __name__ == "__main__":
    main()
