"""Where a front's errors come from: the force and energy errors of every model of an
`accuracy_front` work folder, per kind of structure, on its test files (and, to tell fitting from
memorising, on its training and validation files).

    python -m benchmarks.front_breakdown front_work/mlearn_mo --refine description 'at (\\d+ K)' \
        --files train valid test_test --name mlearn_mo

A frame's kind is its `config_type` (mlearn's `group`: AIMD-NVT, Elastic, Surface, Vacancy), read
from the split files or, for files written before they carried it, from the source record the
frame came from (`source`, `source_index`); `--refine FIELD REGEX` appends the first group of
REGEX matched in that record's FIELD (e.g. the temperature of an mlearn AIMD run). mlip models are
evaluated here (`mlip/*/model.mlip`); MACE's test predictions are the ones the front saved
(`mace/predictions_test_*.json`, or those of `--mace OTHER_WORK`, a front run on the same split files).
Writes benchmarks/results/front_breakdown_NAME.json and prints a table of force MAE (meV/Å) per kind
and, where MACE's predictions are there, the Pearson correlation of every mlip model's force-error
components with MACE's per kind: a high correlation says the two unrelated models fail on the same atoms,
which points to the data (too few such structures, or labels hard for any local model) more than to either
model; it does not by itself bound how low either error can go.
"""

from __future__ import annotations

import argparse
import json
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from benchmarks.accuracy_front import errors, mlip_predictions
from benchmarks.common import write_result


@lru_cache(maxsize=8)
def source_records(path: str) -> list | None:
    """The records of a JSON source file (mlearn / MPtrj list), or None for other sources."""
    if not path.endswith(".json") or not Path(path).is_file():
        return None
    data = json.loads(Path(path).read_text())
    return data if isinstance(data, list) else None


def kind_of(atoms, refine: tuple[str, str] | None) -> str:
    """The frame's config_type (else its source record's `group`), refined by a regex on a record field."""
    records = source_records(str(atoms.info.get("source", "")))
    index = int(atoms.info.get("source_index", -1))
    record = records[index] if records is not None and 0 <= index < len(records) else {}
    kind = str(atoms.info.get("config_type", record.get("config_type", record.get("group", ""))))
    if refine is not None:
        match = re.search(refine[1], str(record.get(refine[0], "")))
        if match:
            kind = f"{kind} {match.group(1)}".strip()
    return kind


def error_correlation(reference: list, forces: list[np.ndarray], other: list[np.ndarray]) -> dict[str, float]:
    """Pearson r of two models' force-error components (F − F_ref, every atom and axis), per kind and "all"."""
    kinds = [str(a.info.get("config_type", "")) for a in reference]
    out = {}
    for kind in [*sorted(set(kinds)), "all"]:
        chosen = [i for i, k in enumerate(kinds) if kind in ("all", k)]
        mine = np.concatenate([(forces[i] - reference[i].arrays["REF_forces"]).ravel() for i in chosen])
        theirs = np.concatenate([(other[i] - reference[i].arrays["REF_forces"]).ravel() for i in chosen])
        out[kind or "(none)"] = float(np.corrcoef(mine, theirs)[0, 1])
    return out


def breakdown(work: Path, files: list[str], refine: tuple[str, str] | None,
              mace_work: Path | None = None) -> dict[str, dict[str, dict]]:
    """{file: {model: errors with by_config_type}} for every mlip model (and MACE's saved test predictions,
    from `mace_work` if given, whose split file must equal this one's); with MACE, every mlip model's
    errors carry `correlation_with_mace` per kind."""
    import ase.io

    models = sorted(work.glob("mlip/*/model.mlip"))
    result: dict[str, dict[str, dict]] = {}
    for name in files:
        path = work / f"{name}.xyz"
        reference = ase.io.read(path, ":")
        for atoms in reference:
            atoms.info["config_type"] = kind_of(atoms, refine)
        stress = any("REF_stress" in a.info for a in reference)
        result[name] = {}
        mace_forces = None
        saved = (mace_work or work) / "mace" / f"predictions_{name}.json"
        if mace_work is not None and (mace_work / f"{name}.xyz").read_bytes() != path.read_bytes():
            raise SystemExit(f"{mace_work / name}.xyz is not {path}: MACE's predictions must be on the same frames")
        if saved.exists():
            rows = json.loads(saved.read_text())["rows"]
            mace_forces = [np.array(r["forces"]) for r in rows]
            result[name]["MACE"] = errors(reference, np.array([r["energy"] for r in rows]), mace_forces,
                                          [r["stress"] for r in rows] if stress and "stress" in rows[0] else None)
        for model in models:
            energies, forces, stresses, _ = mlip_predictions(model, path, stress)
            result[name][model.parent.name] = errors(reference, energies, forces, stresses)
            if mace_forces is not None:
                result[name][model.parent.name]["correlation_with_mace"] = error_correlation(reference, forces,
                                                                                             mace_forces)
    return result


def table(result: dict[str, dict[str, dict]]) -> str:
    """Markdown: one row per file and model, force MAE (meV/Å, frames) per kind and overall."""
    kinds = sorted({k for models in result.values() for e in models.values() for k in e.get("by_config_type", {})})
    lines = ["| file | model | " + " | ".join(kinds) + " | all |", "|---|---|" + "---|" * (len(kinds) + 1)]
    for name, models in result.items():
        for model, e in models.items():
            by = e.get("by_config_type", {})
            cells = [f"{by[k]['force_mae_meV_A']:.1f} ({by[k]['frames']})" if k in by else "" for k in kinds]
            lines.append(f"| {name} | {model} | " + " | ".join(cells) + f" | {e['force_mae_meV_A']:.1f} |")
    correlated = [(name, model, e["correlation_with_mace"]) for name, models in result.items()
                  for model, e in models.items() if "correlation_with_mace" in e]
    if correlated:
        lines += ["", "Correlation of force errors with MACE's (Pearson r over components):", "",
                  "| file | model | " + " | ".join(kinds) + " | all |", "|---|---|" + "---|" * (len(kinds) + 1)]
        for name, model, r in correlated:
            lines.append(f"| {name} | {model} | " + " | ".join(f"{r[k]:.2f}" if k in r else "" for k in kinds)
                         + f" | {r['all']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path, help="an accuracy_front --work folder")
    parser.add_argument("--files", nargs="+", default=None,
                        help="split files to evaluate, without .xyz (default: every test_*.xyz)")
    parser.add_argument("--refine", nargs=2, metavar=("FIELD", "REGEX"),
                        help="append REGEX's first group, matched in the source record's FIELD, to the kind")
    parser.add_argument("--name", help="result name (default: the work folder's name)")
    parser.add_argument("--mace", type=Path, help="take MACE's test predictions from this front work folder "
                        "(a run on the same split files) instead of WORK's own")
    args = parser.parse_args()
    if not (args.work / "mlip").is_dir():
        parser.error(f"{args.work} is not an accuracy_front work folder (no mlip/ inside)")
    files = args.files or sorted(p.stem for p in args.work.glob("test_*.xyz"))
    result = breakdown(args.work, files, tuple(args.refine) if args.refine else None, args.mace)
    write_result(f"front_breakdown_{args.name or args.work.name}", {"work": str(args.work), "refine": args.refine,
                                                                  "mace": str(args.mace) if args.mace else None,
                                                                  "errors": result})
    print(table(result))


if __name__ == "__main__":
    main()
