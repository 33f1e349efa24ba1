"""Hostile and corrupt model files thrown at `mlip.export.load`: refused, how fast, how much memory.

    python -m benchmarks.hostile_models [--out benchmarks/results/hostile_models.json]

Each file is loaded in its own process under /usr/bin/time with a 4 GiB address-space limit;
outcomes: refused (ModelFileError, no payload run), loaded (for the intact control), crash,
hang, or other error. Time and peak memory of every case are recorded, with the worst.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import torch

from benchmarks.common import write_result
from benchmarks.hostile_inputs import _limits

LOADER = """
import sys, mlip.export
try:
    mlip.export.load(sys.argv[1])
    print("OUTCOME loaded")
except mlip.export.ModelFileError as exc:
    print("OUTCOME refused", str(exc).splitlines()[0][:200])
"""


class Payload:
    """Unpickling this would print a marker: it must never happen."""

    def __reduce__(self):
        return (print, ("PAYLOAD RAN",))


def _rewrite(path: Path, header=None, weights: bytes | None = None, extra: dict[str, bytes] | None = None,
             compression: int = zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path) as archive:
        old_header, old_weights = json.loads(archive.read("mlip.json")), archive.read("weights.pt")
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        archive.writestr("mlip.json", json.dumps(header(old_header) if header else old_header))
        archive.writestr("weights.pt", weights if weights is not None else old_weights)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)


def cases(folder: Path) -> dict[str, Path]:
    """name → hostile file (and one intact control)."""
    import mlip.export
    from mlip.checksum import sha256_bytes
    from mlip.models import build_potential

    torch.manual_seed(0)
    potential = build_potential("equivariant", ["H", "C", "O"], 5.0, channels=8, lmax=1)
    made: dict[str, Path] = {}

    def variant(name: str, **changes) -> None:
        path = mlip.export.save(potential, folder / f"{name}.mlip")
        if changes:
            _rewrite(path, **changes)
        made[name] = path

    pickled = io.BytesIO()
    torch.save({"evil": Payload()}, pickled)
    variant("intact")
    variant("pickled_payload", weights=pickled.getvalue())
    variant("pickled_payload_forged_hash", weights=pickled.getvalue(),
            header=lambda h: {**h, "weights_sha256": sha256_bytes(pickled.getvalue())})
    variant("flipped_weight_bytes", weights=bytes(b ^ 0xFF if i == 2000 else b for i, b in
                                                   enumerate(_weights(made["intact"]))))
    variant("num_layers_1e5", header=lambda h: {**h, "network": {**h["network"], "num_layers": 100000}})
    variant("channels_1e9", header=lambda h: {**h, "network": {**h["network"], "channels": 10**9}})
    variant("lmax_50", header=lambda h: {**h, "network": {**h["network"], "lmax": 50}})
    variant("float16", header=lambda h: {**h, "dtype": "float16"})
    variant("element_500", header=lambda h: {**h, "elements": [1, 500]})
    variant("cutoff_1e6", header=lambda h: {**h, "cutoff": 1e6})
    variant("newer_format", header=lambda h: {**h, "version": 99})
    variant("zip_bomb_weights", weights=bytes(256 << 20), compression=zipfile.ZIP_DEFLATED)
    variant("extra_member", extra={"run_me.py": b"print('hi')"})
    junk = folder / "not_a_zip.mlip"
    junk.write_bytes(b"not a zip" * 100)
    made["not_a_zip"] = junk
    truncated = folder / "truncated.mlip"
    truncated.write_bytes(made["intact"].read_bytes()[:-300])
    made["truncated"] = truncated
    return made


def _weights(path: Path) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read("weights.pt")


def run(path: Path) -> dict:
    timing = path.with_suffix(".time")
    start = time.perf_counter()
    try:
        done = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(timing), sys.executable, "-c", LOADER, str(path)],
                              capture_output=True, text=True, timeout=120, preexec_fn=_limits(None))
        code, out, err = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired:
        code, out, err = None, "", ""
    seconds = time.perf_counter() - start
    line = next((l for l in out.splitlines() if l.startswith("OUTCOME ")), "")
    outcome = ("hang" if code is None else "payload ran" if "PAYLOAD RAN" in out + err else
               line.split()[1] if line else "crash" if code < 0 else "error")
    peak = timing.read_text().split()[-1] if timing.exists() and timing.read_text().split() else "0"
    return {"outcome": outcome, "message": line.removeprefix(f"OUTCOME {outcome}").strip(), "exit": code,
            "seconds": round(seconds, 2), "peak_mb": round(float(peak) / 1024, 1) if peak.isdigit() else None,
            "file_kb": round(path.stat().st_size / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory(prefix="mlip_hostile_models_") as tmp:
        for name, path in cases(Path(tmp)).items():
            rows[name] = run(path)
            print(f"{rows[name]['outcome']:8s} {rows[name]['seconds']:5.1f} s {rows[name]['peak_mb']:7.1f} MB  {name}: "
                  f"{rows[name]['message'][:120]}", flush=True)
    hostile = {k: v for k, v in rows.items() if k != "intact"}
    worst = max(hostile, key=lambda k: hostile[k]["peak_mb"] or 0)
    summary = {"hostile_tried": len(hostile), "refused": sum(v["outcome"] == "refused" for v in hostile.values()),
               "payload_ran": sum(v["outcome"] == "payload ran" for v in hostile.values()),
               "crash_or_hang": sum(v["outcome"] in ("crash", "hang") for v in hostile.values()),
               "intact_loaded": rows["intact"]["outcome"] == "loaded",
               "worst_peak_mb": hostile[worst]["peak_mb"], "worst_case": worst,
               "intact_peak_mb": rows["intact"]["peak_mb"],
               "slowest_s": max(v["seconds"] for v in hostile.values())}
    print(json.dumps(summary, indent=1))
    write_result("hostile_models", {"summary": summary, "rows": rows}, args.out)


if __name__ == "__main__":
    main()
