"""The CUDA path in one short run, for a session that is lent a GPU: agreement with the CPU, compiled and eager
inference per atom-step, batched MD and a few training steps, each timed on the device.

    bash scripts/gpu_check.sh prepare          # here: the wheels the GPU image lacks, into .device_wheels/
    # then, with the device tool: command "bash scripts/gpu_check.sh run", carry [".device_wheels"]
    python -m benchmarks.cuda_check --device cpu --sizes 64 --md-steps 5 --train-steps 5   # a dry run on a CPU

Sections (each reported as it finishes, all in one JSON; a section that fails is recorded and the rest go on):
1. agreement: `equivariant_medium` (random weights, float64) on the device against the CPU on a rattled triclinic
   Si cell and aspirin: energy, forces and stress differences, and the energy's spread over a rotation;
2. inference: one energy + forces call, eager and compiled (`compile_potential`), float32, diamond Si of each
   `--sizes` atoms: median ms, µs/atom-step, compiled/eager speed-up, max |ΔF| between the two;
3. batched MD: `mlip.simulate.batched_md.run_md` (torch-sim Langevin, 300 K) of 32 Si cells of 64 atoms on the
   device, eager and compiled: structure-steps/s;
4. training: `--train-steps` optimizer steps of `mlip-train` on the shipped aspirin set on the device: steps/s.
Timings synchronise the device before reading the clock.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def synchronized(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_median(call, device: torch.device, repeats: int) -> float:
    """Median seconds of `call()` over `repeats` calls after two untimed ones."""
    for _ in range(2):
        call()
    synchronized(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        synchronized(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def medium_potential(elements: list[str], dtype: torch.dtype, device: torch.device):
    from mlip.models import build_potential
    from mlip.models.presets import load_preset

    torch.manual_seed(0)
    options = {**load_preset("equivariant_medium"), "avg_num_neighbors": 20.0}
    potential = build_potential(elements=elements, cutoff=5.0, dtype=dtype, **options)
    return potential.eval().requires_grad_(False).to(device)


def agreement(device: torch.device) -> dict:
    """Device against CPU in float64, and a rotation on the device."""
    from ase.build import bulk
    from scipy.spatial.transform import Rotation

    import mlip.io
    from mlip.graph import GraphBatch
    from mlip.io import Frame

    rng = np.random.default_rng(0)
    cell = bulk("Si", "diamond", a=5.43).repeat((2, 2, 2))
    cell.set_cell(cell.cell.array @ (np.eye(3) + rng.normal(0, 0.03, (3, 3))), scale_atoms=True)
    cell.positions += rng.normal(0, 0.1, cell.positions.shape)
    frames = [Frame(numbers=cell.numbers, positions=cell.positions, cell=cell.cell.array, pbc=cell.pbc),
              mlip.io.read(ROOT / "data" / "rmd17_aspirin_test100.npz")[0]]
    cpu = medium_potential(["H", "C", "O", "Si"], torch.float64, torch.device("cpu"))
    on_device = medium_potential(["H", "C", "O", "Si"], torch.float64, device)
    on_device.load_state_dict(cpu.state_dict())
    batch = GraphBatch.from_frames(frames, 5.0).to(dtype=torch.float64)
    expected = {key: value.detach() for key, value in cpu(batch, forces=True, stress=True).items()}
    got = {key: value.detach() for key, value in on_device(batch.to(device=device), forces=True, stress=True).items()}
    rotation = torch.tensor(Rotation.random(random_state=1).as_matrix())
    turned = [Frame(numbers=f.numbers, positions=f.positions @ rotation.numpy().T, cell=f.cell @ rotation.numpy().T,
                    pbc=f.pbc) for f in frames]
    turned_out = {key: value.detach() for key, value in
                  on_device(GraphBatch.from_frames(turned, 5.0).to(dtype=torch.float64, device=device), forces=True).items()}
    return {"energy_max_abs_diff_eV": float((got["energy"].cpu() - expected["energy"]).abs().max()),
            "forces_max_abs_diff_eV_A": float((got["forces"].cpu() - expected["forces"]).abs().max()),
            "stress_max_abs_diff_eV_A3": float((got["stress"][0].cpu() - expected["stress"][0]).abs().max()),
            "rotated_energy_max_abs_diff_eV": float((turned_out["energy"] - got["energy"]).abs().max()),
            "rotated_forces_max_abs_diff_eV_A": float((turned_out["forces"].cpu()
                                                       - got["forces"].cpu() @ rotation.T).abs().max())}


def inference(device: torch.device, sizes: list[int]) -> list[dict]:
    """Eager and compiled energy + forces calls, float32, diamond Si."""
    from benchmarks.systems import silicon
    from mlip.export.compiled import compile_potential
    from mlip.graph import GraphBatch
    from mlip.io import Frame

    potential = medium_potential(["Si"], torch.float32, device)
    compiled = compile_potential(potential)
    rows = []
    for size in sizes:
        atoms = silicon(size)
        frame = Frame(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell.array, pbc=atoms.pbc)
        batch = GraphBatch.from_frames([frame], 5.0).to(dtype=torch.float32, device=device)
        start = time.perf_counter()
        fast_forces = compiled(batch, forces=True)["forces"]
        synchronized(device)
        compile_s = time.perf_counter() - start
        repeats = max(5, min(30, 20000 // size))
        eager_s = timed_median(lambda: potential(batch, forces=True), device, repeats)
        compiled_s = timed_median(lambda: compiled(batch, forces=True), device, repeats)
        difference = float((fast_forces - potential(batch, forces=True)["forces"]).abs().max())
        rows.append({"atoms": size, "edges": int(batch.receivers.numel()), "compile_s": compile_s,
                     "eager_ms": eager_s * 1e3, "compiled_ms": compiled_s * 1e3,
                     "eager_us_per_atom_step": eager_s * 1e6 / size, "compiled_us_per_atom_step": compiled_s * 1e6 / size,
                     "compiled_speedup": eager_s / compiled_s, "max_force_difference_eV_A": difference,
                     "peak_memory_gb": torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None})
        print(f"  Si {size}: eager {eager_s * 1e3:.2f} ms, compiled {compiled_s * 1e3:.2f} ms "
              f"({rows[-1]['compiled_us_per_atom_step']:.2f} µs/atom-step), |ΔF| {difference:.1e}", flush=True)
    return rows


def batched_md(device: torch.device, steps: int) -> list[dict]:
    """32 Si cells of 64 atoms, Langevin 300 K, eager and compiled."""
    from benchmarks.systems import silicon
    from mlip.simulate.batched_md import run_md

    potential = medium_potential(["Si"], torch.float32, device)
    structures = [silicon(64) for _ in range(32)]
    rows = []
    for compile in (False, True):
        run_md(potential, structures, 2, 1.0, 300.0, compile=compile)  # compiles (and warms) outside the timing
        synchronized(device)
        start = time.perf_counter()
        result = run_md(potential, structures, steps, 1.0, 300.0, interval=max(steps // 5, 1), compile=compile)
        synchronized(device)
        seconds = time.perf_counter() - start
        rows.append({"compile": compile, "structures": 32, "atoms_each": 64, "steps": steps,
                     "structure_steps_per_s": 32 * steps / seconds, "atom_steps_per_s": 32 * 64 * steps / seconds,
                     "mean_temperature_K_last": float(result.temperatures[-1].mean())})
        print(f"  batched MD, compile={compile}: {rows[-1]['structure_steps_per_s']:.0f} structure-steps/s", flush=True)
    return rows


def training(device: torch.device, steps: int) -> dict:
    """`steps` optimizer steps of mlip-train on the shipped aspirin set."""
    accelerator = "gpu" if device.type == "cuda" else "cpu"
    with tempfile.TemporaryDirectory() as work:
        command = [sys.executable, "-m", "mlip.train.cli", "--run_dir", f"{work}/run", "--data.train",
                   str(ROOT / "data" / "rmd17_aspirin_train200.npz"), "--data.val_fraction", "0.1",
                   "--data.batch_size", "5", "--data.cutoff", "5.0", "--model.model", "equivariant_medium",
                   "--trainer.accelerator", accelerator, "--trainer.devices", "1", "--trainer.max_steps", str(steps),
                   "--trainer.enable_progress_bar", "false"]
        start = time.perf_counter()
        run = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if run.returncode != 0:
        raise RuntimeError(f"mlip-train failed ({run.returncode}): {run.stderr.strip().splitlines()[-1:]}")
    epochs = [line for line in run.stdout.splitlines() if line.startswith("epoch")]
    return {"steps": steps, "seconds_including_start_up": seconds, "last_epoch_line": epochs[-1] if epochs else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", nargs="+", type=int, default=[512, 4096, 32768])
    parser.add_argument("--md-steps", type=int, default=200)
    parser.add_argument("--train-steps", type=int, default=200)
    parser.add_argument("--out", default=None, help="JSON file (default: benchmarks/results/cuda_check.json)")
    args = parser.parse_args()
    device = torch.device(args.device)
    report: dict = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                    "torch": torch.__version__, "sections": {}, "failed": {}}
    print(f"device {report['device']}, torch {torch.__version__}", flush=True)
    sections = (("agreement", lambda: agreement(device)), ("inference", lambda: inference(device, args.sizes)),
                ("batched_md", lambda: batched_md(device, args.md_steps)),
                ("training", lambda: training(device, args.train_steps)))
    for name, section in sections:
        start = time.perf_counter()
        try:
            report["sections"][name] = section()
            print(f"{name} ({time.perf_counter() - start:.0f} s): {json.dumps(report['sections'][name])[:400]}", flush=True)
        except Exception as error:  # one broken section must not cost the others' device time
            report["failed"][name] = "".join(traceback.format_exception_only(error)).strip()[-2000:]
            print(f"{name} FAILED: {report['failed'][name]}", flush=True)
    from benchmarks.common import write_result

    write_result("cuda_check", report, args.out)


if __name__ == "__main__":
    main()
