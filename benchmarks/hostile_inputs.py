"""Bad input thrown at `mlip-preprocess`: is every one refused with a one-line message naming the file?

    python -m benchmarks.hostile_inputs [--out benchmarks/results/hostile_inputs.json]

Every case of `benchmarks.bad_inputs.CASES` (malformed, truncated, degenerate or absurd
structures in every format mlip reads, and a size-limited output to stand in for a full disk)
runs in its own `mlip-preprocess` process with a time limit and an address-space limit. Outcomes:
refused (exit 2, one stderr line naming the file), traceback, crash (killed by a signal or
another exit code), hang (over the time limit), silent (exit 0 on bad input) and, for the good
controls, accepted. Peak memory and time of every case are recorded; the table goes to stdout
and the JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bad_inputs import CASES, Case, classify
from benchmarks.common import write_result

TIME_LIMIT_S = 60
MEMORY_LIMIT_BYTES = 4 * 1024 ** 3


def _limits(file_size: int | None):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
        if file_size is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
    return apply


def run_case(case: Case, folder: Path) -> dict:
    """One case in a fresh process: outcome, exit code, stderr's last line, seconds, peak MB."""
    folder.mkdir(parents=True)
    inputs = case.build(folder)
    memory = folder / "peak_kb.txt"
    command = ["/usr/bin/time", "-f", "%M", "-o", str(memory), sys.executable, "-m", "mlip.data.cli",
               *map(str, inputs), "--out", str(folder / "out"), "--workers", "1", "--quiet", *case.arguments]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIME_LIMIT_S,
                              preexec_fn=_limits(case.file_size_limit))
        code, stderr = done.returncode, done.stderr
    except subprocess.TimeoutExpired:
        code, stderr = None, ""
    seconds = time.perf_counter() - start
    peak_kb = memory.read_text().split()[-1] if memory.exists() and memory.read_text().split() else "0"
    outcome = classify(case, code, stderr, [str(p) for p in inputs] + [str(folder / "out")])
    lines = stderr.strip().splitlines()
    last = lines[-1] if lines else ""
    return {"case": case.name, "format": case.format, "bad": case.bad, "outcome": outcome, "exit": code,
            "message": last, "seconds": round(seconds, 2), "peak_mb": round(float(peak_kb) / 1024, 1) if peak_kb.isdigit() else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="mlip_hostile_") as tmp:
        for case in CASES:
            row = run_case(case, Path(tmp) / case.name)
            rows.append(row)
            print(f"{row['outcome']:9s} {row['seconds']:5.1f} s  {case.name}: {row['message'][:150]}", flush=True)
    bad = [r for r in rows if r["bad"]]
    summary = {"bad_inputs_tried": len(bad),
               **{k: sum(r["outcome"] == k for r in bad) for k in ("refused", "traceback", "crash", "hang", "silent")},
               "good_controls": sum(not r["bad"] for r in rows),
               "good_accepted": sum(r["outcome"] == "accepted" for r in rows if not r["bad"]),
               "slowest_s": max(r["seconds"] for r in rows)}
    print(json.dumps(summary, indent=1))
    write_result("hostile_inputs", {"summary": summary, "rows": rows, "time_limit_s": TIME_LIMIT_S,
                                    "memory_limit_gb": MEMORY_LIMIT_BYTES / 1024 ** 3}, args.out)


if __name__ == "__main__":
    main()
