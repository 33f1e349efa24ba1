"""Accuracy at equal compute against MACE, on any data mlip reads: an error-vs-time front.

    python -m benchmarks.accuracy_front --dataset aspirin --minutes 12 --mace-python .bench/mace/bin/python \
        --variants equivariant_medium equivariant_small
    python -m benchmarks.accuracy_front --train my_train.xyz --test my_test.xyz --name mine --minutes 5 \
        --variants '{"preset": "equivariant_medium", "channels": 64}' \
        --read-options '{"energy_key": "REF_energy", "forces_key": "REF_forces", "stress_key": "REF_stress"}'

Protocol ("Equal compute, measured fairly", ../shared/docs/BENCHMARKS.md):
- the training frames are split once (seeded) into train/validation, and train, validation and
  every test file are written as extended XYZ (REF_energy, REF_forces, REF_stress) that both
  packages read; E0s are the least-squares per-element energies of the training frames on
  both sides (mlip's manifest computes them; MACE gets them as --E0s);
- MACE (../shared/bench/mace/train_for.py, the CPU model of BENCHMARKS.md) and the first mlip
  variant start together, each pinned to its own core with one thread (taskset, OMP_NUM_THREADS=1),
  each for the same wall time after start-up; further mlip variants run two at a time the same
  way, so every job shares the machine with exactly one other single-threaded training;
  /usr/bin/time -v records the CPU time and peak memory of each;
- the same recipe on both sides: batch 5, AMSGrad lr 0.01, EMA 0.99, loss E/atom MSE + 100·F MSE
  (+ 10·stress MSE where labelled), float32, 5 Å;
- both packages' models predict every test file; the same code computes the errors: energy MAE
  per structure and per atom, offset-removed MAE (after subtracting the mean signed error),
  force MAE/RMSE per component, stress MAE; inference cost per atom-step of each model.
Writes benchmarks/results/accuracy_front_NAME.json (and --out) and a PNG of validation errors
against wall time (all variants and MACE) beside test force MAE against inference cost.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, lightning_max_time, write_result
from mlip.io.errors import InvalidStructureError
from mlip.io.read_options import ReadOptions

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MACE_SCRIPTS = SHARED / "bench" / "mace"
DATA = SHARED / "data"
KEYS = {"energy_key": "REF_energy", "forces_key": "REF_forces", "stress_key": "REF_stress"}
STRESS_WEIGHT = 10.0

# name: training inputs, test inputs, whether stresses are trained
DATASETS = {
    "aspirin": (["rmd17/aspirin_train_01.npz"], ["rmd17/aspirin_test_01.npz"], False),
    "ethanol": (["rmd17/ethanol_train_01.npz"], ["rmd17/ethanol_test_01.npz"], False),
    "acac": (["acac/train_300K.xyz"], ["acac/test_MD_300K.xyz", "acac/test_MD_600K.xyz"], False),
    "mlearn_si": (["mlearn/Si/training.json"], ["mlearn/Si/test.json"], True),
    "mlearn_mo": (["mlearn/Mo/training.json"], ["mlearn/Mo/test.json"], True),
    "si_mo2023": (["si_mo2023/Vacancy-enhanced_Training_Set", "si_mo2023/Interstitial-enhanced_Training_Set"],
                  ["si_mo2023/Enhanced_Validation_Set"], False),
}


# ----- data: one split, written once, read by both packages ------------------------------------
def read_frames(path: Path, like: Path | None = None, read_options: dict | None = None) -> list:
    """Frames of any input mlip reads; si_mo2023 folders (POSCAR zip + JSON) via the example converter.
    `read_options`: `mlip.io.read`'s label keys for your own files, e.g. {"energy_key": "REF_energy"}.

    An mlearn test JSON is read with the shear-stress order of its training file `like`
    (the order is read off the training file's Elastic cells; the test files have none).
    """
    import mlip.io
    from mlip.io.mptrj_reader import mlearn_shear_order, read_mptrj

    if like is not None and path.suffix == ".json" and like.suffix == ".json":
        order = mlearn_shear_order(json.loads(like.read_text()))
        return list(read_mptrj(path, require=("energy", "forces"), shear_order=order))
    if (path / "DATA.json").exists():
        sys.path.insert(0, str(ROOT / "examples"))
        from convert_si_mo2023 import convert_folder

        converted = Path(tempfile.mkdtemp(prefix="si_mo2023_")) / f"{path.name}.xyz"
        convert_folder(path, converted)
        path = converted
    return mlip.io.read(path, require=("energy", "forces"), **(read_options or {}))


def write_xyz(frames: list, path: Path) -> Path:
    """Extended XYZ with REF_energy / REF_forces (/ REF_stress, 3×3, ASE sign) for both packages."""
    import ase.io

    images = []
    for frame in frames:
        atoms = frame.to_atoms()
        atoms.info["REF_energy"] = float(frame.energy)
        atoms.arrays["REF_forces"] = np.asarray(frame.forces, dtype=float)
        if frame.stress is not None:
            atoms.info["REF_stress"] = np.asarray(frame.stress, dtype=float).reshape(9)
        images.append(atoms)
    ase.io.write(path, images, format="extxyz")
    return path


def least_squares_e0s(frames: list) -> dict[int, float]:
    """Per-element energies (eV) that best explain the training energies: the E0s of both packages."""
    elements = sorted({int(z) for f in frames for z in f.numbers})
    counts = np.array([[np.sum(f.numbers == z) for z in elements] for f in frames], dtype=float)
    energies = np.array([f.energy for f in frames])
    solution = np.linalg.lstsq(counts, energies, rcond=None)[0]
    return {z: float(e) for z, e in zip(elements, solution)}


def prepare(train: list[Path], tests: list[Path], work: Path, n_valid: int, seed: int,
            read_options: dict | None = None) -> dict:
    frames = [f for path in train for f in read_frames(path, read_options=read_options)]
    order = np.random.default_rng(seed).permutation(len(frames))
    n_valid = min(n_valid, max(1, len(frames) // 10))
    valid, training = [frames[i] for i in order[:n_valid]], [frames[i] for i in order[n_valid:]]
    files = {"train": write_xyz(training, work / "train.xyz"), "valid": write_xyz(valid, work / "valid.xyz")}
    test_files = {}
    for path in tests:
        name = path.stem if path.is_file() else path.name
        test_files[name] = write_xyz(read_frames(path, like=train[0], read_options=read_options), work / f"test_{name}.xyz")
    return {"files": files, "tests": test_files, "e0s": least_squares_e0s(training), "n_train": len(training),
            "n_valid": len(valid), "stress": any(f.stress is not None for f in training)}


# ----- training jobs, two at a time, one core and one thread each --------------------------------
def variant_options(spec: str) -> tuple[str, dict]:
    """A preset name ("equivariant_medium") or JSON {"preset": ..., "name": ..., options...}."""
    if not spec.lstrip().startswith("{"):
        return spec, {"preset": spec}
    options = json.loads(spec)
    name = options.pop("name", None) or "+".join([options.get("preset", "equivariant_medium")]
                                                  + [f"{k}={v}" for k, v in options.items() if k != "preset"])
    return name, options


def mlip_command(options: dict, data: dict, run: Path, seconds: float, stress_weight: float = STRESS_WEIGHT
                 ) -> list[str]:
    """mlip-train for one variant; its "minutes" option, where given, replaces the common budget.

    Keys "model.X" / "data.X" / "trainer.X", "ema_decay" and "seed_everything" of the variant are
    passed as such (--model.X, ..., --seed_everything) after the common recipe, so they override it
    (e.g. {"data.batch_size": 2}); the other keys are model options.
    """
    options = dict(options)
    seconds = float(options.pop("minutes", seconds / 60)) * 60
    preset = options.pop("preset", "equivariant_medium")
    module = {k: options.pop(k) for k in list(options) if k.startswith(("model.", "data.", "trainer."))
              or k in ("ema_decay", "seed_everything")}
    bin_ = Path(sys.executable).parent
    command = [str(bin_ / "mlip-train"), "--run_dir", str(run), "--data.train", str(data["files"]["train"]),
               "--data.val", str(data["files"]["valid"]),
               "--data.cutoff", "5.0", "--data.read_options", json.dumps(KEYS),
               "--data.batch_size", "5", "--data.val_batch_size", "10",
               "--model.model", preset, "--model.model_options", json.dumps(options), "--model.lr", "0.01",
               "--model.forces_weight", "100", "--model.energy_weight", "1", "--model.plateau_patience", "50",
               "--model.stress_weight", str(stress_weight if data["stress"] else 0.0),
               "--ema_decay", "0.99", "--trainer.max_epochs", "100000",
               "--trainer.max_time", lightning_max_time(seconds / 60), "--trainer.enable_progress_bar", "false",
               "--trainer.enable_model_summary", "false", "--checkpoint_every_n_steps", "1000"]
    for key, value in module.items():
        command += [f"--{key}", str(value)]
    return command


def mace_command(python: str, data: dict, run: Path, seconds: float, stress_weight: float = STRESS_WEIGHT,
                 extra: list[str] | None = None) -> list[str]:
    e0s = "{" + ", ".join(f"{z}: {e!r}" for z, e in data["e0s"].items()) + "}"
    command = [python, str(MACE_SCRIPTS / "train_for.py"), str(run), str(data["files"]["train"]),
               str(data["files"]["valid"]), str(seconds), "--E0s", e0s]
    if data["stress"]:
        command += ["--stress_key", "REF_stress", "--stress_weight", str(stress_weight), "--compute_stress", "True",
                    "--loss", "stress"]
    return command + list(extra or [])


def launch(command: list[str], core: int, log: Path, timing: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    full = ["taskset", "-c", str(core), "/usr/bin/time", "-v", "-o", str(timing), *command]
    print(f"[core {core}] $ {' '.join(command)}", flush=True)
    # its own process group, so that stopping the harness also stops children the job started (MACE's trainer)
    return subprocess.Popen(full, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                            start_new_session=True)


def stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM to the process group of every job still running (then SIGKILL after 10 s)."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def resources(timing: Path) -> dict:
    """CPU seconds, wall seconds and peak RSS from /usr/bin/time -v."""
    fields = {}
    for line in timing.read_text().splitlines():
        key, _, value = line.strip().rpartition(": ")
        fields[key] = value
    wall = fields.get("Elapsed (wall clock) time (h:mm:ss or m:ss)", "0:0")
    seconds = sum(float(part) * 60 ** i for i, part in enumerate(reversed(wall.split(":"))))
    return {"cpu_s": float(fields.get("User time (seconds)", 0)) + float(fields.get("System time (seconds)", 0)),
            "wall_s": seconds, "peak_rss_mb": float(fields.get("Maximum resident set size (kbytes)", 0)) / 1024}


def finished_runs(jobs: list[tuple[str, list[str], Path]]) -> dict[str, dict]:
    """The cost records of runs already trained in the jobs' folders (`--evaluate-only`): a model
    file and the /usr/bin/time record of a job that exited 0; a job without them is {"failed": why}."""
    done = {}
    for name, _, folder in jobs:
        model = folder / ("mace.model" if name == "MACE" else "model.mlip")
        timing = folder / "time.txt"
        ok = timing.is_file() and "Exit status: 0" in timing.read_text()
        done[name] = resources(timing) if ok and model.is_file() else {
            "failed": f"no finished run in {folder} (model file and a zero exit status in time.txt)"}
        print(f"{name}: {json.dumps(done[name])}", flush=True)
    return done


def run_jobs(jobs: list[tuple[str, list[str], Path]], cores: tuple[int, ...] = (0, 1)) -> dict[str, dict]:
    """Run (name, command, folder) jobs as many at a time as `cores`, one per core; the first
    ones start together. When a job fails, its partners are stopped (a job left alone on the
    machine would train faster than the others: not equal compute), all are reported as
    {"failed": why}, and the next group goes on."""
    done = {}
    for start in range(0, len(jobs), len(cores)):
        running = []
        for core, (name, command, folder) in zip(cores, jobs[start:start + len(cores)]):
            if folder.exists():  # a finished run there would be resumed as "nothing to do", not retrained
                print(f"{name}: removing the previous run in {folder}", flush=True)
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            running.append((name, folder, launch(command, core, folder / "job.log", folder / "time.txt")))
        try:
            failure = None
            while failure is None and any(process.poll() is None for _, _, process in running):
                failure = next((f"{name} exited {process.returncode}; see {folder / 'job.log'}"
                                for name, folder, process in running if process.poll() not in (None, 0)), None)
                time.sleep(0.5)
            failure = failure or next((f"{name} exited {process.returncode}; see {folder / 'job.log'}"
                                       for name, folder, process in running if process.returncode != 0), None)
        finally:  # a failure, Ctrl-C or SIGTERM leaves no training running on its own
            stop([process for _, _, process in running])
        for name, folder, _ in running:
            done[name] = {"failed": failure} if failure else resources(folder / "time.txt")
            print(f"{name}: {json.dumps(done[name])}", flush=True)
    return done


# ----- errors, curves and cost, computed the same way for both packages --------------------------
def errors(reference: list, energies: np.ndarray, forces: list[np.ndarray], stresses: list | None) -> dict:
    """Energy (meV, meV/atom, offset removed), force (meV/Å) and stress (meV/Å³) errors on one test file."""
    atoms = np.array([len(a) for a in reference])
    de = energies - np.array([a.info["REF_energy"] for a in reference])
    df = np.concatenate([f - a.arrays["REF_forces"] for f, a in zip(forces, reference)])
    result = {"frames": len(reference), "energy_mae_meV": 1e3 * np.abs(de).mean(),
              "energy_mae_offset_removed_meV": 1e3 * np.abs(de - de.mean()).mean(),
              "energy_mean_signed_meV": 1e3 * de.mean(), "energy_rmse_meV": 1e3 * np.sqrt((de ** 2).mean()),
              "energy_mae_meV_per_atom": 1e3 * np.abs(de / atoms).mean(),
              "energy_rmse_meV_per_atom": 1e3 * np.sqrt(((de / atoms) ** 2).mean()),
              "force_mae_meV_A": 1e3 * np.abs(df).mean(), "force_rmse_meV_A": 1e3 * np.sqrt((df ** 2).mean())}
    kinds = [str(a.info.get("config_type", "")) for a in reference]
    if len(set(kinds)) > 1:  # e.g. mlearn's groups: which kind of structure the errors come from
        result["by_config_type"] = {}
        for kind in sorted(set(kinds)):
            chosen = [i for i, k in enumerate(kinds) if k == kind]
            dfk = np.concatenate([forces[i] - reference[i].arrays["REF_forces"] for i in chosen])
            result["by_config_type"][kind or "(none)"] = {
                "frames": len(chosen), "force_mae_meV_A": 1e3 * np.abs(dfk).mean(),
                "energy_mae_meV_per_atom": 1e3 * np.abs(de[chosen] / atoms[chosen]).mean()}
    labelled = [i for i, a in enumerate(reference) if "REF_stress" in a.info]
    if stresses is not None and labelled:
        ds = np.array([np.asarray(stresses[i]).reshape(9) - np.asarray(reference[i].info["REF_stress"]).reshape(9)
                       for i in labelled])
        result["stress_mae_meV_A3"] = 1e3 * np.abs(ds).mean()
    return result


def mlip_predictions(model: Path, test: Path, stress: bool) -> tuple[np.ndarray, list, list | None, float]:
    """Energies, forces, stresses of a model file on a test file, and µs per atom-step (1 thread, one by one)."""
    import ase.io
    import torch

    from mlip.export import load
    from mlip.graph import GraphBatch
    from mlip.io import Frame

    torch.set_num_threads(1)
    potential = load(model).eval().requires_grad_(False)  # frozen, as mlip's and MACE's calculators run models
    reference = ase.io.read(test, ":")
    energies, forces, stresses, seconds = [], [], [], []
    for atoms in reference:
        frame = Frame(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell.array, pbc=atoms.pbc)
        start = time.perf_counter()
        batch = GraphBatch.from_frames([frame], potential.cutoff)
        out = potential(batch, forces=True, stress=stress and bool(atoms.pbc.all()))
        seconds.append((time.perf_counter() - start) / len(atoms))
        energies.append(float(out["energy"][0].detach()))
        forces.append(out["forces"].detach().numpy().astype(float))
        if "stress" in out:
            stresses.append(out["stress"][0].detach().numpy().astype(float))
    return np.array(energies), forces, (stresses if stress else None), 1e6 * float(np.median(seconds[1:] or seconds))


MACE_PREDICT = """
import sys, time, json, numpy as np, ase.io, torch
from mace.calculators import MACECalculator
torch.set_num_threads(1)
model, test, out, stress = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
calc = MACECalculator(model_paths=model, device="cpu", default_dtype="float32")
rows, seconds = [], []
for atoms in ase.io.read(test, ":"):
    atoms.calc = calc
    start = time.perf_counter()
    e, f = atoms.get_potential_energy(), atoms.get_forces()
    seconds.append((time.perf_counter() - start) / len(atoms))
    s = atoms.get_stress(voigt=False).reshape(9).tolist() if stress and atoms.pbc.all() else None
    rows.append({"energy": float(e), "forces": f.tolist(), "stress": s})
json.dump({"rows": rows, "us_per_atom_step": 1e6 * float(np.median(seconds[1:] or seconds))}, open(out, "w"))
"""


def mace_predictions(python: str, model: Path, test: Path, stress: bool) -> tuple[np.ndarray, list, list | None, float]:
    out = model.parent / f"predictions_{test.stem}.json"
    subprocess.run(["taskset", "-c", "0", python, "-c", MACE_PREDICT, str(model), str(test), str(out),
                    "1" if stress else "0"], check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    data = json.loads(out.read_text())
    rows = data["rows"]
    return (np.array([r["energy"] for r in rows]), [np.array(r["forces"]) for r in rows],
            [r["stress"] for r in rows] if stress else None, data["us_per_atom_step"])


def mlip_curve(run: Path) -> list[list[float]]:
    """[seconds, epoch, validation energy MAE meV/atom, force MAE meV/Å] per validation of a run."""
    rows = [r for r in csv.DictReader(open(run / "metrics.csv")) if r.get("val_forces_mae") and r.get("elapsed_s")]
    return [[float(r["elapsed_s"]), int(float(r["epoch"])), float(r["val_energy_mae"]), float(r["val_forces_mae"])]
            for r in rows]


def mace_curve(run: Path, mean_atoms: float) -> list[list[float]]:
    """MACE's validation curve in the same units (its total-energy MAE divided by the mean atom count)."""
    curve = json.loads((run / "result.json").read_text())["valid_curve"]
    return [[c[0], c[1], c[2] if c[4] == "per_atom" else c[2] / mean_atoms, c[3]] for c in curve if c[1] >= 0]


def time_to_reach(curve: list[list[float]], target: float) -> float | None:
    """First wall time (s) at which a curve's validation force MAE is at or below `target`."""
    return next((c[0] for c in curve if c[3] <= target), None)


def plot(rows: list[dict], title: str, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for row in rows:
        curve = row["valid_curve"]
        style = {"color": "black", "lw": 2} if row["package"] == "mace" else {}
        t = [c[0] / 60 for c in curve]
        axes[0].plot(t, [c[2] for c in curve], marker="o", ms=2, label=row["name"], **style)
        axes[1].plot(t, [c[3] for c in curve], marker="o", ms=2, label=row["name"], **style)
        first = next(iter(row["test"].values()))
        axes[2].scatter(row["us_per_atom_step"], first["force_mae_meV_A"], s=30,
                        color="black" if row["package"] == "mace" else None, label=row["name"])
        axes[2].annotate(row["name"], (row["us_per_atom_step"], first["force_mae_meV_A"]), fontsize=7,
                         xytext=(4, 4), textcoords="offset points")
    labels = [("validation energy MAE (meV/atom)", "wall time (min), one core each"),
              ("validation force MAE (meV/Å)", "wall time (min), one core each"),
              (f"test force MAE (meV/Å), {next(iter(rows[0]['test']))}", "inference cost (µs per atom-step, 1 thread)")]
    for ax, (ylabel, xlabel) in zip(axes, labels):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[2].set_xscale("log")
    for axis in (axes[0].yaxis, axes[1].yaxis, axes[2].yaxis, axes[2].xaxis):  # 1-2-5 ticks, plain numbers
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.set_minor_formatter(NullFormatter())
    axes[0].set_title("validation energy error vs training time")
    axes[1].set_title("validation force error vs training time")
    axes[2].set_title("accuracy vs inference cost")
    axes[1].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def earlier_result(name: str, results: Path = RESULTS) -> Path | None:
    """The result file a run named `name` would replace (accuracy_front_NAME.json), if it exists."""
    path = results / f"accuracy_front_{name}.json"
    return path if path.exists() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), help="a dataset of ../shared/data")
    parser.add_argument("--train", type=Path, nargs="+", help="training inputs (any format mlip reads)")
    parser.add_argument("--test", type=Path, nargs="+", help="test inputs, each reported apart")
    parser.add_argument("--read-options", type=json.loads, default=None,
                        help="label keys of your --train/--test files as JSON, e.g. '{\"energy_key\": \"REF_energy\", "
                             "\"forces_key\": \"REF_forces\", \"stress_key\": \"REF_stress\"}' (mlip.io.read's options)")
    parser.add_argument("--name", help="result name (default: the dataset)")
    parser.add_argument("--minutes", type=float, default=12.0, help="training wall time of every job after start-up")
    parser.add_argument("--variants", nargs="+", default=["equivariant_medium"],
                        help="mlip presets or JSON {preset, name, minutes, network options..., 'model.X': module "
                             "option}; 'minutes' gives that variant its own budget (e.g. 4 to test time-to-target)")
    parser.add_argument("--mace-python", help="python of the MACE venv (../shared/bench/mace/setup.sh)")
    parser.add_argument("--mace-extra", default="",
                        help="further mace_run_train flags, one string, e.g. --mace-extra='--swa --start_swa 5' "
                             "(MACE's second stage, beside an mlip variant with model.late_energy_weight)")
    parser.add_argument("--n-valid", type=int, default=50, help="validation frames (at most 10%% of the training set)")
    parser.add_argument("--stress-weight", type=float, default=STRESS_WEIGHT,
                        help="loss weight of the stress MSE, (eV/Å³)², on both sides where stresses are labelled")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cores", type=int, nargs="+", default=[0, 1],
                        help="cores to pin the training jobs to, one job per core at a time (default: 0 1)")
    parser.add_argument("--work", type=Path, help="keep the split, runs and models here")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="train nothing: evaluate the runs already finished in --work (same variants), "
                             "e.g. after an interrupted evaluation")
    parser.add_argument("--replot", metavar="RESULT_JSON", type=Path, help="only redraw the PNG of a result file")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier result of the same --name (refused otherwise)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that run_jobs stops its jobs
    if args.replot:
        saved = json.loads(args.replot.read_text())["results"]
        title = f"{saved['dataset']}: {saved['n_train']} training frames, {saved['minutes']:g} min per model, one core each"
        print(plot(saved["rows"], title, args.replot.with_suffix(".png")))
        return
    if args.dataset:
        train, tests, _ = DATASETS[args.dataset]
        train, tests = [DATA / p for p in train], [DATA / p for p in tests]
    elif args.train and args.test:
        train, tests = args.train, args.test
    else:
        parser.error("give --dataset or both --train and --test")
    name = args.name or args.dataset
    clash = earlier_result(name)
    if clash and not (args.overwrite or args.evaluate_only):
        parser.error(f"{clash} holds an earlier result named '{name}': pick another --name or pass --overwrite")
    if args.evaluate_only and not (args.work and args.work.is_dir()):
        parser.error("--evaluate-only needs the --work folder of a previous run")
    work = args.work or Path(tempfile.mkdtemp(prefix=f"mlip_front_{name}_"))
    work.mkdir(parents=True, exist_ok=True)
    if args.read_options is not None:
        if not isinstance(args.read_options, dict):
            parser.error("--read-options must be a JSON object, e.g. '{\"energy_key\": \"REF_energy\"}'")
        try:  # the label keys only: the harness itself requires energies and forces
            ReadOptions.of(args.read_options)
        except (ValueError, TypeError) as error:
            parser.error(f"--read-options: {error}")
        if "require" in args.read_options:
            parser.error("--read-options: 'require' is set by the harness (energy and forces)")
    try:
        data = prepare(train, tests, work, args.n_valid, args.seed, args.read_options)
    except InvalidStructureError as error:
        parser.error(str(error))
    print(f"{data['n_train']} training, {data['n_valid']} validation frames; tests {list(data['tests'])}; "
          f"E0s {data['e0s']}; stress {data['stress']}", flush=True)
    seconds = args.minutes * 60
    variants = [variant_options(v) for v in args.variants]
    jobs = [(n, mlip_command(o, data, work / "mlip" / n.replace("/", "_"), seconds, args.stress_weight),
             work / "mlip" / n.replace("/", "_")) for n, o in variants]
    if args.mace_python:
        jobs.insert(1, ("MACE", mace_command(args.mace_python, data, work / "mace", seconds, args.stress_weight,
                                                shlex.split(args.mace_extra)),
                        work / "mace"))
    cost = finished_runs(jobs) if args.evaluate_only else run_jobs(jobs, tuple(args.cores))
    failed = {n: cost[n]["failed"] for n, _, _ in jobs if "failed" in cost[n]}
    jobs = [job for job in jobs if job[0] not in failed]

    import ase.io

    mean_atoms = float(np.mean([len(a) for a in ase.io.read(data["files"]["valid"], ":")]))
    rows = []
    for job_name, _, folder in jobs:
        mace = job_name == "MACE"
        model = folder / ("mace.model" if mace else "model.mlip")
        row = {"name": job_name, "package": "mace" if mace else "mlip", **cost[job_name], "test": {},
               "valid_curve": mace_curve(folder, mean_atoms) if mace else mlip_curve(folder)}
        if not mace:
            row["options"] = dict(variants)[job_name]
        for test_name, test in data["tests"].items():
            predict = (lambda m, t, s: mace_predictions(args.mace_python, m, t, s)) if mace else mlip_predictions
            energies, forces, stresses, per_atom = predict(model, test, data["stress"])
            row["test"][test_name] = errors(ase.io.read(test, ":"), energies, forces, stresses)
            row["us_per_atom_step"] = per_atom
        row["epochs"] = row["valid_curve"][-1][1] + 1 if row["valid_curve"] else 0
        rows.append(row)
        print(f"{job_name}: " + json.dumps({t: {k: round(v, 2) for k, v in e.items() if not isinstance(v, dict)}
                                            for t, e in row["test"].items()}), flush=True)
    mace_rows = [r for r in rows if r["package"] == "mace"]
    if mace_rows and mace_rows[0]["valid_curve"]:
        target = mace_rows[0]["valid_curve"][-1][3]
        for row in rows:
            row["seconds_to_mace_final_val_force_mae"] = time_to_reach(row["valid_curve"], target)
            for test_name, errs in row["test"].items():
                reference = mace_rows[0]["test"][test_name]
                errs["force_mae_ratio_to_mace"] = errs["force_mae_meV_A"] / reference["force_mae_meV_A"]
                errs["energy_mae_ratio_to_mace"] = errs["energy_mae_meV"] / reference["energy_mae_meV"]
    result_name = f"accuracy_front_{name}"
    png = plot(rows, f"{name}: {data['n_train']} training frames, {args.minutes:g} min per model, one core each",
               RESULTS / f"{result_name}.png")
    write_result(result_name, {"minutes": args.minutes, "dataset": name, "train": [str(p) for p in train],
                               "tests": {k: str(v) for k, v in data["tests"].items()}, "e0s": data["e0s"],
                               "n_train": data["n_train"], "n_valid": data["n_valid"], "stress": data["stress"],
                               "recipe": f"batch 5, AMSGrad lr 0.01, EMA 0.99, E/atom + 100 F (+ {args.stress_weight:g} "
                                         "stress), float32",
                               "commands": {j[0]: j[1] for j in jobs}, "failed": failed, "rows": rows,
                               "plot": str(png)})
    print(format_table(rows))
    if failed:
        raise SystemExit("failed: " + "; ".join(f"{n} ({why})" for n, why in failed.items()))


def format_table(rows: list[dict]) -> str:
    lines = ["| model | epochs | CPU s | test set | E MAE (meV) | E MAE offset removed | F MAE (meV/Å) | F ratio to MACE "
             "| µs/atom-step |", "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        for test_name, e in row["test"].items():
            ratio = e.get("force_mae_ratio_to_mace")
            lines.append(f"| {row['name']} | {row['epochs']} | {row['cpu_s']:.0f} | {test_name} | {e['energy_mae_meV']:.1f} "
                         f"| {e['energy_mae_offset_removed_meV']:.1f} | {e['force_mae_meV_A']:.1f} | "
                         f"{'' if ratio is None else f'{ratio:.2f}'} | {row['us_per_atom_step']:.0f} |")
    kinds = sorted({k for row in rows for e in row["test"].values() for k in e.get("by_config_type", {})})
    if kinds:
        lines += ["", "| model | test set | " + " | ".join(f"F MAE {k}" for k in kinds) + " |",
                  "|---|---|" + "---|" * len(kinds)]
        for row in rows:
            for test_name, e in row["test"].items():
                by = e.get("by_config_type", {})
                cells = [f"{by[k]['force_mae_meV_A']:.1f} ({by[k]['frames']})" if k in by else "" for k in kinds]
                lines.append(f"| {row['name']} | {test_name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
