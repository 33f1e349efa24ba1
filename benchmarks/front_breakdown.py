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
(`mace/predictions_test_*.json`). Writes benchmarks/results/front_breakdown_NAME.json and prints a
table of force MAE (meV/Å) per kind.
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


def breakdown(work: Path, files: list[str], refine: tuple[str, str] | None) -> dict[str, dict[str, dict]]:
    """{file: {model: errors with by_config_type}} for every mlip model (and MACE's saved test predictions)."""
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
        for model in models:
            energies, forces, stresses, _ = mlip_predictions(model, path, stress)
            result[name][model.parent.name] = errors(reference, energies, forces, stresses)
        saved = work / "mace" / f"predictions_{name}.json"
        if saved.exists():
            rows = json.loads(saved.read_text())["rows"]
            result[name]["MACE"] = errors(reference, np.array([r["energy"] for r in rows]),
                                          [np.array(r["forces"]) for r in rows],
                                          [r["stress"] for r in rows] if stress and "stress" in rows[0] else None)
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
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path, help="an accuracy_front --work folder")
    parser.add_argument("--files", nargs="+", default=None,
                        help="split files to evaluate, without .xyz (default: every test_*.xyz)")
    parser.add_argument("--refine", nargs=2, metavar=("FIELD", "REGEX"),
                        help="append REGEX's first group, matched in the source record's FIELD, to the kind")
    parser.add_argument("--name", help="result name (default: the work folder's name)")
    args = parser.parse_args()
    if not (args.work / "mlip").is_dir():
        parser.error(f"{args.work} is not an accuracy_front work folder (no mlip/ inside)")
    files = args.files or sorted(p.stem for p in args.work.glob("test_*.xyz"))
    result = breakdown(args.work, files, tuple(args.refine) if args.refine else None)
    write_result(f"front_breakdown_{args.name or args.work.name}", {"work": str(args.work), "refine": args.refine,
                                                                  "errors": result})
    print(table(result))


if __name__ == "__main__":
    main()
