"""Summarise accuracy-front results (benchmarks/results/accuracy_front_*.json) as one Markdown table.

    python -m benchmarks.front_table aspirin ethanol acac mlearn_si mlearn_mo si_mo2023

For each dataset and test file: every mlip variant of the result against MACE (the variant's name after the
dataset's where a result has several), both trained for the same wall time on their own core: test force and energy errors (raw and offset-removed), stress
where labelled, the time mlip needed to reach MACE's final validation force MAE, inference
cost per atom-step and the CPU seconds each job used.
"""

from __future__ import annotations

import json
import sys

from benchmarks.common import RESULTS


def rows_for(name: str) -> list[str]:
    path = RESULTS / f"accuracy_front_{name}.json"
    if not path.exists():
        return [f"| {name} | (not run: {path.name} missing) |"]
    result = json.loads(path.read_text())["results"]
    mace = next((r for r in result["rows"] if r["package"] == "mace"), None)
    variants = [r for r in result["rows"] if r["package"] == "mlip"]
    return [line for mlip in variants
            for line in variant_rows(name if len(variants) == 1 else f"{name}: {mlip['name']}", mlip, mace)]


def variant_rows(label: str, mlip: dict, mace: dict | None) -> list[str]:
    """One Markdown row per test file of one mlip variant (`mlip`, a result row) beside MACE's row, if any."""
    lines = []
    for test, e in mlip["test"].items():
        m = mace["test"][test] if mace else {}
        reach = mlip.get("seconds_to_mace_final_val_force_mae")

        def pair(key: str, digits: int = 1) -> str:
            ours = e.get(key)
            theirs = m.get(key)
            if ours is None:
                return "–"
            return f"{ours:.{digits}f} / {theirs:.{digits}f}" if theirs is not None else f"{ours:.{digits}f}"

        ratio = f"{e['force_mae_meV_A'] / m['force_mae_meV_A']:.2f}" if m else "–"
        lines.append(
            f"| {label} | {test} | {mlip['epochs']} / {mace['epochs'] if mace else '–'} | {pair('force_mae_meV_A')} | "
            f"**{ratio}** | {pair('energy_mae_meV')} | {pair('energy_mae_offset_removed_meV')} | "
            f"{pair('stress_mae_meV_A3', 2)} | {'–' if reach is None else f'{reach / 60:.1f}'} | "
            f"{mlip['us_per_atom_step']:.0f} / {mace['us_per_atom_step'] if mace else float('nan'):.0f} | "
            f"{mlip['cpu_s']:.0f} / {mace['cpu_s'] if mace else float('nan'):.0f} |")
    return lines


def main() -> None:
    names = sys.argv[1:] or ["aspirin", "ethanol", "acac", "mlearn_si", "mlearn_mo", "si_mo2023"]
    print("| dataset | test set | epochs mlip / MACE | F MAE (meV/Å) mlip / MACE | F ratio | E MAE (meV) | "
          "E MAE offset removed (meV) | stress MAE (meV/Å³) | min to MACE's final val F | µs/atom-step | CPU s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in names:
        print("\n".join(rows_for(name)))


if __name__ == "__main__":
    main()
