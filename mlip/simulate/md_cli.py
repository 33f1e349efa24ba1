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
    parser.add_argument("--batched", action="store_true",
                        help="run every frame of STRUCTURE together on torch-sim (nve/nvt; mlip[torchsim]); writes "
                             "final.xyz, md_batched_log.csv and trajectories/NNNNN.xyz (one per structure, a frame "
                             "every --interval steps)")
    parser.add_argument("--compile", action="store_true",
                        help="run the network under torch.compile: 1.5-2x faster per step on a CPU after 10-120 s of "
                             "compiling (worth it for long runs)")
    args = parser.parse_args(argv)
    if args.batched:
        return _batched(args)
    try:
        calculator = MLIPCalculator(args.model, device=args.device, compile=args.compile)
        atoms = read(args.structure)[args.frame].to_atoms()
        log = run_md(atoms, calculator, args.out, args.ensemble, args.steps, args.timestep, args.temperature,
                     args.friction, args.pressure, args.interval, args.seed, progress=sys.stderr.isatty())
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


def _batched(args: argparse.Namespace) -> int:
    """All frames of the input in one torch-sim batch; one log row per report with each structure's
    temperature and potential energy."""
    import csv
    from pathlib import Path

    import ase.io
    import torch

    from mlip.export import load
    from mlip.simulate.batched_md import run_md as run_batched

    if args.ensemble not in ("nve", "nvt"):
        print("mlip-md: error: --batched runs nve or nvt", file=sys.stderr)
        return 2
    out = Path(args.out)
    trajectories = out / "trajectories"

    def write_frames(step: int, frames: list) -> None:  # one extxyz per structure, appended every report
        trajectories.mkdir(parents=True, exist_ok=True)
        for k, atoms in enumerate(frames):
            atoms.info.update(step=step, time_fs=round(step * args.timestep, 9))
            ase.io.write(trajectories / f"{k:05d}.xyz", atoms, format="extxyz", append=True)

    try:
        potential = load(args.model, device=args.device).requires_grad_(False)  # inference: frozen weights
        structures = [frame.to_atoms() for frame in read(args.structure)]
        for atoms in structures:
            potential.species(torch.as_tensor(atoms.numbers))  # unknown elements: refused up front
        for old in trajectories.glob("*.xyz"):  # a rerun into the same folder starts its trajectories afresh
            old.unlink()
        result = run_batched(potential, structures, args.steps, args.timestep, args.temperature, args.ensemble,
                             args.friction, args.interval, args.seed, compile=args.compile,
                             progress=sys.stderr.isatty(), on_report=write_frames)  # bars on a terminal only
    except (ModelFileError, InvalidStructureError, UnknownElementError, ValueError, OSError) as exc:
        print(f"mlip-md: error: {exc}", file=sys.stderr)
        return 2
    except MDInstabilityError as exc:
        print(f"mlip-md: stopped: {exc}; the trajectories up to there are in {trajectories}", file=sys.stderr)
        return 3
    out.mkdir(parents=True, exist_ok=True)
    ase.io.write(out / "final.xyz", result.structures, format="extxyz")
    reports = len(result.temperatures)
    with open(out / "md_batched_log.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        n = len(structures)
        writer.writerow(["step", "time_fs"] + [f"T{k}_K" for k in range(n)] + [f"epot{k}_eV" for k in range(n)])
        for r in range(reports):
            step = min((r + 1) * args.interval, args.steps)
            writer.writerow([step, step * args.timestep, *result.temperatures[r], *result.potential_energies[r]])
    print(f"ran {len(structures)} structures x {args.steps} steps; wrote {out / 'final.xyz'}, "
          f"{out / 'md_batched_log.csv'} and {trajectories}/ (one trajectory per structure)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
