"""`mlip-relax MODEL INPUTS... --out DIR`: relax many structures, resumably, with a progress bar.

Writes DIR/structures/NNNNN.xyz (one relaxed structure each, written atomically),
DIR/summary.csv (energy, max force, max stress, steps, converged, volume per structure) and,
at the end, DIR/relaxed.xyz with all of them. Rerunning skips structures already relaxed.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import ase.io
import torch
from tqdm.auto import tqdm

from mlip.atomic_write import atomic_path
from mlip.calculator import MLIPCalculator
from mlip.export import ModelFileError
from mlip.folder_lock import FolderInUseError, exclusive_folder
from mlip.io import InvalidStructureError, expand_paths, iread
from mlip.models.potential import UnknownElementError
from mlip.simulate.relax import RelaxationError, relax
from mlip.version_flag import add_version_flag

FIELDS = ["index", "input_sha256", "source", "frame", "formula", "atoms", "energy_eV", "energy_per_atom_eV", "fmax_eV_per_A",
          "smax_eV_per_A3", "volume_A3", "steps", "converged"]


def structure_key(frame) -> str:
    """SHA-256 of a structure's content (numbers, positions to 1e-8 Å, cell, pbc): its identity for resuming."""
    import hashlib

    digest = hashlib.sha256()
    for array in (frame.numbers.astype("int64"), (frame.positions * 1e8).round().astype("int64"),
                  (frame.cell * 1e8).round().astype("int64"), frame.pbc.astype("int8")):
        digest.update(array.tobytes())
    return digest.hexdigest()


def _write_atomic(path: Path, atoms) -> None:
    with atomic_path(path) as tmp:
        ase.io.write(tmp, atoms, format="extxyz")


def _record(out: Path, writer: csv.DictWriter, k: int, key: str, frame, result) -> None:
    """Write one relaxed structure (atomically) and its summary row."""
    atoms = result.atoms
    atoms.calc = None  # keep the file plain: the energy goes into info
    atoms.info.update(energy=result.energy, converged=result.converged)
    _write_atomic(out / "structures" / f"{key[:16]}.xyz", atoms)
    volume = atoms.get_volume() if atoms.pbc.all() else float("nan")
    writer.writerow({"index": k, "input_sha256": key, "source": frame.source, "frame": frame.index,
                     "formula": atoms.get_chemical_formula(), "atoms": len(atoms), "energy_eV": result.energy,
                     "energy_per_atom_eV": result.energy / len(atoms), "fmax_eV_per_A": result.fmax,
                     "smax_eV_per_A3": result.smax, "volume_A3": volume, "steps": result.steps,
                     "converged": result.converged})


def _relax_batched(args: argparse.Namespace, potential, frames: list, keys: list[str], pending: list[int], out: Path,
                   writer: csv.DictWriter, handle) -> None:
    """Relax the pending structures together (`relax_batch`), `--chunk` at a time (each chunk's
    results are written before the next starts, so an interrupted run resumes from there)."""
    from mlip.simulate.batched_relax import relax_batch

    bar = tqdm(total=len(pending), desc="relax (batched)", unit=" struct")
    for start in range(0, len(pending), args.chunk):
        chunk = pending[start:start + args.chunk]
        try:
            results = relax_batch(potential, [frames[k].to_atoms() for k in chunk], args.fmax, args.smax,
                                  not args.fixed_cell, args.max_steps, atoms_per_call=args.atoms_per_call)
        except RelaxationError as exc:  # name the input, not the position in the chunk
            frame = frames[chunk[exc.structure]]
            raise RelaxationError(f"structure {frame.index} of {frame.source}: "
                                  f"{str(exc).split(', ', 1)[1]}") from None
        for k, result in zip(chunk, results):
            _record(out, writer, k, keys[k], frames[k], result)
        handle.flush()
        bar.update(len(chunk))
    bar.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlip-relax", description=__doc__.splitlines()[0])
    add_version_flag(parser)
    parser.add_argument("model", help="model file (model.mlip)")
    parser.add_argument("inputs", nargs="+", help="structure files or folders (CIF, POSCAR, extxyz, JSON, ...)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--fmax", type=float, default=0.02, help="force criterion, eV/Å (default 0.02)")
    parser.add_argument("--smax", type=float, default=1e-3, help="stress criterion, eV/Å³ (default 1e-3)")
    parser.add_argument("--optimizer", default="fire", choices=["fire", "bfgs", "lbfgs"])
    parser.add_argument("--fixed-cell", action="store_true", help="relax positions only")
    parser.add_argument("--fix-symmetry", action="store_true", help="keep the space group")
    parser.add_argument("--max-steps", type=int, default=500)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batched", action="store_true",
                        help="relax many structures together (batched FIRE, one model call per step for all); "
                             "several times faster for many structures")
    parser.add_argument("--chunk", type=int, default=64,
                        help="--batched: structures relaxed together, written before the next chunk starts")
    parser.add_argument("--atoms-per-call", type=int,
                        help="--batched: most atoms per model call (default 512 on CPU, 65536 on GPU)")
    parser.add_argument("--compile", action="store_true",
                        help="run the network under torch.compile: 1.5-2x faster per call on a CPU after 10-120 s of "
                             "compiling (worth it for many or large structures)")
    args = parser.parse_args(argv)
    if args.batched and (args.optimizer != "fire" or args.fix_symmetry):
        parser.error("--batched runs FIRE without symmetry constraints; drop --optimizer/--fix-symmetry or --batched")
    too_few_atoms = args.atoms_per_call is not None and args.atoms_per_call < 1
    if args.chunk < 1 or args.max_steps < 1 or args.fmax <= 0 or args.smax <= 0 or too_few_atoms:
        parser.error("--chunk, --atoms-per-call and --max-steps must be at least 1; --fmax and --smax positive")
    try:
        with exclusive_folder(args.out, "mlip-relax"):
            return _relax_all(args)
    except FolderInUseError as exc:
        print(f"mlip-relax: error: {exc}", file=sys.stderr)
        return 2


def _relax_all(args: argparse.Namespace) -> int:
    out = Path(args.out)
    (out / "structures").mkdir(parents=True, exist_ok=True)
    summary = out / "summary.csv"
    done = {row.get("input_sha256") for row in csv.DictReader(open(summary))} if summary.exists() else set()
    try:
        calculator = MLIPCalculator(args.model, device=args.device, compile=args.compile)
        frames = [frame for path in expand_paths(args.inputs) for frame in iread(path)]
    except (ModelFileError, InvalidStructureError, FileNotFoundError, ValueError) as exc:
        print(f"mlip-relax: error: {exc}", file=sys.stderr)
        return 2
    new_file = not summary.exists()
    with open(summary, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        if new_file:
            writer.writeheader()
        keys = [structure_key(frame) for frame in frames]
        pending = [k for k, key in enumerate(keys) if key not in done]  # earlier runs' results: by content
        for k in pending:  # elements the model does not know: refused before any work
            try:
                calculator.potential.species(torch.as_tensor(frames[k].numbers))
            except UnknownElementError as exc:
                print(f"mlip-relax: error: structure {frames[k].index} of {frames[k].source}: {exc}", file=sys.stderr)
                return 2
        try:
            if args.batched:
                _relax_batched(args, calculator.potential, frames, keys, pending, out, writer, handle)
            else:
                for k in tqdm(pending, desc="relax", unit=" struct"):
                    try:
                        result = relax(frames[k].to_atoms(), calculator, args.fmax, args.smax, not args.fixed_cell,
                                       args.optimizer, args.fix_symmetry, args.max_steps)
                    except RelaxationError as exc:
                        raise RelaxationError(f"structure {frames[k].index} of {frames[k].source}: {exc}") from None
                    _record(out, writer, k, keys[k], frames[k], result)
                    handle.flush()
        except RelaxationError as exc:
            print(f"mlip-relax: stopped: {exc}; the structures relaxed before it are kept in {out}", file=sys.stderr)
            return 3
    relaxed = [ase.io.read(out / "structures" / f"{key[:16]}.xyz") for key in keys]  # in input order
    _write_atomic(out / "relaxed.xyz", relaxed)
    rows = [row for row in csv.DictReader(open(summary)) if row.get("input_sha256") in set(keys)]
    failed = sum(row["converged"] != "True" for row in rows)
    print(f"relaxed {len(rows)} structures ({failed} not converged) -> {out / 'relaxed.xyz'}, {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
