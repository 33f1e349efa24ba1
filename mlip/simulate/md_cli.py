"""`mlip-md MODEL STRUCTURE --out DIR [--ensemble nve|nvt|npt]`: molecular dynamics with a model file."""

from __future__ import annotations

import argparse
import sys

from mlip.calculator import MLIPCalculator
from mlip.export import ModelFileError
from mlip.io import InvalidStructureError, read
from mlip.models.potential import UnknownElementError
from mlip.simulate.md import ENSEMBLES, MDInstabilityError, energy_drift, run_md
from mlip.version_flag import add_version_flag


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlip-md", description=__doc__.splitlines()[0])
    add_version_flag(parser)
    parser.add_argument("model", help="model file (model.mlip)")
    parser.add_argument("structure", help="a structure file (its first frame is used unless --frame)")
    parser.add_argument("--out", required=True, help="folder for trajectory.xyz and md_log.csv")
    parser.add_argument("--frame", type=int, default=0)
    parser.add_argument("--ensemble", default="nve", choices=ENSEMBLES)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--timestep", type=float, default=0.5, help="fs")
    parser.add_argument("--temperature", type=float, default=300.0, help="K (initial velocities; NVT/NPT target)")
    parser.add_argument("--friction", type=float, default=0.01, help="Langevin friction, 1/fs")
    parser.add_argument("--pressure", type=float, default=0.0, help="NPT pressure, GPa")
    parser.add_argument("--interval", type=int, default=10, help="steps between log rows and frames")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        calculator = MLIPCalculator(args.model, device=args.device)
        atoms = read(args.structure)[args.frame].to_atoms()
        log = run_md(atoms, calculator, args.out, args.ensemble, args.steps, args.timestep, args.temperature,
                     args.friction, args.pressure, args.interval, args.seed)
    except (ModelFileError, InvalidStructureError, UnknownElementError, ValueError, IndexError, OSError) as exc:
        print(f"mlip-md: error: {exc}", file=sys.stderr)
        return 2
    except MDInstabilityError as exc:
        print(f"mlip-md: stopped: {exc}; trajectory and log up to there are in {args.out}", file=sys.stderr)
        return 3
    message = f"wrote {log} and {log.with_name('trajectory.xyz')}"
    if args.ensemble == "nve":
        message += f"; total-energy drift {energy_drift(log):+.3f} meV/atom/ps"
    print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
