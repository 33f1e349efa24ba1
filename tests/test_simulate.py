"""Relaxation (positions and cell), mlip-relax (resumable) and mlip-md."""

from __future__ import annotations

import csv
import importlib.util

import ase.io
import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.emt import EMT

import mlip.calculator
import mlip.export
from mlip.models import build_potential
from mlip.simulate.md import energy_drift
from mlip.simulate.md_cli import main as md_main
from mlip.simulate.relax import relax
from mlip.simulate.relax_cli import main as relax_main


@pytest.mark.parametrize("optimizer", ["fire", "bfgs", "lbfgs"])
def test_relaxation_finds_the_emt_lattice_constant(optimizer):
    atoms = bulk("Cu", "fcc", a=3.75)
    atoms.rattle(0.02, seed=1)
    result = relax(atoms, EMT(), fmax=1e-3, smax=1e-5, optimizer=optimizer, max_steps=300)
    assert result.converged
    assert result.atoms.cell.cellpar()[0] * 2**0.5 == pytest.approx(3.5897, abs=2e-3)


def test_fix_symmetry_keeps_the_cubic_cell():
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True)
    result = relax(atoms, EMT(), fix_symmetry=True)
    a, b, c, alpha, beta, gamma = result.atoms.cell.cellpar()
    assert a == pytest.approx(b, abs=1e-8) and b == pytest.approx(c, abs=1e-8) and alpha == pytest.approx(90)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(0)
    # an untrained model: its random energy surface, scaled down, heats MD to ~1,000s of K, not past the watchdog
    potential = build_potential("equivariant", ["Cu"], 4.0, channels=8, lmax=1, avg_num_neighbors=30.0, scale=0.2)
    return mlip.export.save(potential, tmp_path_factory.mktemp("model") / "cu.mlip")


def test_mlip_relax_writes_results_and_resumes(model_file, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for k, a in enumerate((3.55, 3.6, 3.65)):
        ase.io.write(inputs / f"POSCAR_{k}", bulk("Cu", "fcc", a=a, cubic=True), format="vasp")
    out = tmp_path / "out"
    assert relax_main([str(model_file), str(inputs), "--out", str(out), "--max-steps", "20"]) == 0
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert len(rows) == 3 and len(ase.io.read(out / "relaxed.xyz", index=":")) == 3
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "structures").glob("*.xyz")}
    assert relax_main([str(model_file), str(inputs), "--out", str(out), "--max-steps", "20"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "structures").glob("*.xyz")} == stamps
    assert len(list(csv.DictReader(open(out / "summary.csv")))) == 3
    (inputs / "POSCAR_0").rename(inputs / "POSCAR_9")  # new order, one new structure: only that one is relaxed
    ase.io.write(inputs / "POSCAR_3", bulk("Cu", "fcc", a=3.7, cubic=True), format="vasp")
    assert relax_main([str(model_file), str(inputs), "--out", str(out), "--max-steps", "20"]) == 0
    assert len(list(csv.DictReader(open(out / "summary.csv")))) == 4
    assert all(p.stat().st_mtime_ns == stamps[p.name] for p in (out / "structures").glob("*.xyz") if p.name in stamps)
    assert len(ase.io.read(out / "relaxed.xyz", index=":")) == 4


def test_mlip_relax_batched_writes_results_and_resumes(model_file, tmp_path):
    # (that batched and one-by-one relaxations reach the same minima is tested above, in float64)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for k, a in enumerate((3.55, 3.6, 3.65)):
        atoms = bulk("Cu", "fcc", a=a, cubic=True)
        atoms.rattle(0.02, seed=k)
        ase.io.write(inputs / f"POSCAR_{k}", atoms, format="vasp")
    batched = tmp_path / "batched"
    assert relax_main([str(model_file), str(inputs), "--out", str(batched), "--batched", "--chunk", "2"]) == 0
    rows = list(csv.DictReader(open(batched / "summary.csv")))
    assert len(rows) == 3 and all(row["converged"] == "True" for row in rows)
    assert [a.get_potential_energy() for a in ase.io.read(batched / "relaxed.xyz", ":")] == pytest.approx(
        [float(row["energy_eV"]) for row in sorted(rows, key=lambda r: int(r["index"]))])
    stamps = {p.name: p.stat().st_mtime_ns for p in (batched / "structures").glob("*.xyz")}
    assert relax_main([str(model_file), str(inputs), "--out", str(batched), "--batched"]) == 0  # all done: skipped
    assert {p.name: p.stat().st_mtime_ns for p in (batched / "structures").glob("*.xyz")} == stamps
    with pytest.raises(SystemExit) as refused:
        relax_main([str(model_file), str(inputs), "--out", str(tmp_path / "x"), "--batched", "--optimizer", "bfgs"])
    assert refused.value.code == 2


@pytest.mark.parametrize("ensemble", ["nve", "nvt", "npt"])
def test_mlip_md_runs_and_logs(model_file, tmp_path, ensemble):
    structure = tmp_path / "cu.xyz"
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    atoms.rattle(0.02, seed=0)
    ase.io.write(structure, atoms)
    out = tmp_path / ensemble
    assert md_main([str(model_file), str(structure), "--out", str(out), "--ensemble", ensemble, "--steps", "100",
                    "--timestep", "1.0", "--interval", "10", "--temperature", "1000"]) == 0  # untrained model: it heats
    rows = list(csv.DictReader(open(out / "md_log.csv")))
    assert len(rows) == 11 and float(rows[-1]["time_fs"]) == pytest.approx(100.0)
    assert all(np.isfinite(float(r["pressure_GPa"])) for r in rows)
    if ensemble == "nve":
        assert abs(energy_drift(out / "md_log.csv")) < 5.0  # meV/atom/ps


def test_batched_relaxation_reaches_the_one_by_one_minima(model_file):
    from ase.build import molecule

    from mlip.calculator import MLIPCalculator
    from mlip.simulate.batched_relax import relax_batch

    potential = mlip.export.load(model_file, dtype=torch.float64)
    rng = np.random.default_rng(0)
    structures = []
    for k in range(3):  # (a 4th cell takes more than 400 steps on this untrained model, with ASE too)
        atoms = bulk("Cu", "fcc", a=3.6 * (1 + rng.uniform(-0.02, 0.02)), cubic=True)
        atoms.rattle(0.03, seed=k)
        structures.append(atoms)
    cluster = molecule("H2O")  # a molecule among crystals: positions only
    cluster.set_chemical_symbols(["Cu"] * 3)
    cluster.positions *= 2.4
    structures.insert(2, cluster)
    results = relax_batch(potential, structures, fmax=1e-3, smax=1e-5, max_steps=400)
    assert [len(r.atoms) for r in results] == [len(a) for a in structures]
    calculator = MLIPCalculator(potential)
    for atoms, result in zip(structures, results):
        assert result.converged and result.steps < 400 and result.fmax < 1e-3
        # a true minimum: ASE's relaxation from there stays put. (From the same start, the untrained
        # model's rough landscape can lead the two cell parametrisations into different basins; on
        # silicon, benchmarks/relax_throughput.py finds the same minima as ASE's within 0.1 meV/atom.)
        single = relax(result.atoms, calculator, fmax=1e-3, smax=1e-5)
        assert single.converged
        assert result.energy == pytest.approx(single.energy, abs=1e-4 * len(atoms))
        result.atoms.calc = calculator
        assert result.atoms.get_potential_energy() == pytest.approx(result.energy, abs=1e-9)


def test_batched_relaxation_is_the_same_in_calls_of_any_size(model_file):
    """Splitting the structures still relaxing into model calls of at most N atoms changes no step."""
    from mlip.simulate.batched_relax import call_groups, relax_batch

    assert call_groups([4, 4, 3, 4], 8) == [[0, 1], [2, 3]]
    assert call_groups([10, 2, 2], 4) == [[0], [1, 2]]  # a structure above the budget goes alone
    potential = mlip.export.load(model_file, dtype=torch.float64)
    structures = []
    for k in range(3):
        atoms = bulk("Cu", "fcc", a=3.6 * (1 + 0.01 * k), cubic=True)
        atoms.rattle(0.03, seed=k)
        structures.append(atoms)
    together = relax_batch(potential, structures, fmax=1e-3, smax=1e-5, max_steps=25, atoms_per_call=10_000)
    apart = relax_batch(potential, structures, fmax=1e-3, smax=1e-5, max_steps=25, atoms_per_call=5)
    for one, other in zip(together, apart):
        assert one.steps == other.steps
        assert np.allclose(one.atoms.positions, other.atoms.positions, atol=1e-9)
        assert np.allclose(one.atoms.cell.array, other.atoms.cell.array, atol=1e-9)
        assert one.energy == pytest.approx(other.energy, abs=1e-9)


def test_batched_md_conserves_energy_and_thermostats(model_file):
    pytest.importorskip("torch_sim")
    from mlip.simulate.batched_md import run_md
    from mlip.simulate.batched_relax import relax_batch

    potential = mlip.export.load(model_file, dtype=torch.float64)
    minimum = relax_batch(potential, [bulk("Cu", "fcc", a=3.6, cubic=True)], fmax=1e-3)[0].atoms
    structures = []
    for k in range(3):  # from the untrained model's own minimum, so that it does not heat up on the way down
        atoms = minimum.repeat(2)
        atoms.rattle(0.01, seed=k)
        structures.append(atoms)
    nve = run_md(potential, structures, steps=200, timestep_fs=1.0, temperature_K=300, ensemble="nve", interval=20)
    assert nve.temperatures.shape == (10, 3) and len(nve.structures) == 3
    assert np.all(nve.temperatures > 10)
    total = nve.potential_energies + nve.kinetic_energies  # eV, per structure
    assert np.all(np.ptp(total, axis=0) < 1e-3 * 32)  # conserved to 1 meV/atom over 200 fs
    nvt = run_md(potential, structures, steps=400, timestep_fs=2.0, temperature_K=300, friction_per_fs=0.05, interval=40)
    assert np.all(np.abs(nvt.temperatures[-3:].mean(axis=0) - 300) < 150)  # 32 atoms: large fluctuations


def test_mlip_md_batched_runs_every_frame(model_file, tmp_path):
    pytest.importorskip("torch_sim")
    structures = tmp_path / "cells.xyz"
    cells = [bulk("Cu", "fcc", a=a, cubic=True).repeat(2) for a in (3.58, 3.6, 3.62)]
    ase.io.write(structures, cells)
    out = tmp_path / "md"
    assert md_main([str(model_file), str(structures), "--out", str(out), "--batched", "--ensemble", "nvt",
                    "--steps", "50", "--interval", "10", "--temperature", "300"]) == 0
    rows = list(csv.DictReader(open(out / "md_batched_log.csv")))
    assert len(rows) == 5 and {"T0_K", "T2_K", "epot1_eV"} <= set(rows[0])
    finals = ase.io.read(out / "final.xyz", ":")
    assert len(finals) == 3
    for k, final in enumerate(finals):  # one trajectory per structure, a frame every interval, ending at the final
        frames = ase.io.read(out / "trajectories" / f"{k:05d}.xyz", ":")
        assert [f.info["step"] for f in frames] == [10, 20, 30, 40, 50]
        np.testing.assert_allclose(frames[-1].positions, final.positions, atol=1e-6)
    assert md_main([str(model_file), str(structures), "--out", str(out), "--batched", "--ensemble", "npt"]) == 2


def test_relaxation_with_non_finite_model_output_stops_naming_the_structure(model_file, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for k, a in enumerate((3.55, 3.6)):
        ase.io.write(inputs / f"POSCAR_{k}", bulk("Cu", "fcc", a=a, cubic=True), format="vasp")
    broken = mlip.export.load(model_file)
    broken.shift.fill_(float("nan"))  # every energy NaN
    broken_file = mlip.export.save(broken, tmp_path / "nan.mlip")
    for extra in ([], ["--batched"]):
        out = tmp_path / f"out{len(extra)}"
        assert relax_main([str(broken_file), str(inputs), "--out", str(out), *extra]) == 3
    from mlip.simulate.relax import RelaxationError

    with pytest.raises(RelaxationError, match="step 0: non-finite"):
        relax(bulk("Cu", "fcc", a=3.6), mlip.calculator.MLIPCalculator(broken))


def test_exploding_md_stops_with_the_step_and_keeps_the_trajectory(tmp_path):
    from mlip.simulate.md import MDInstabilityError, run_md

    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    with pytest.raises(MDInstabilityError, match=r"step \d+: (temperature|two atoms|non-finite)"):
        run_md(atoms, EMT(), tmp_path, "nve", steps=2000, timestep_fs=30.0, temperature_K=600, interval=5)
    frames = ase.io.read(tmp_path / "trajectory.xyz", ":")
    assert len(frames) >= 1 and (tmp_path / "md_log.csv").read_text().count("\n") == len(frames) + 1


def test_langevin_md_holds_the_centre_of_mass_without_a_deprecated_bias(tmp_path, capsys):
    """NVT holds the centre of mass by ASE's FixCom (not Langevin's deprecated, biased fixcm), the
    caller's atoms get their own constraints back, and a progress bar counts the steps."""
    import warnings

    from ase.constraints import FixAtoms

    from mlip.simulate.md import run_md

    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    atoms.set_constraint(FixAtoms(indices=[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        run_md(atoms, EMT(), tmp_path, "nvt", steps=40, timestep_fs=2.0, temperature_K=600, friction_per_fs=0.05,
               interval=10, progress=True)
    assert "40/40" in capsys.readouterr().err
    centres = [frame.get_center_of_mass() for frame in ase.io.read(tmp_path / "trajectory.xyz", ":")]
    assert np.abs(np.array(centres) - centres[0]).max() < 1e-6
    assert [type(c).__name__ for c in atoms.constraints] == ["FixAtoms"]
    times = [row["time_fs"] for row in csv.DictReader(open(tmp_path / "md_log.csv"))]
    assert times == ["0.0", "20.0", "40.0", "60.0", "80.0"]


@pytest.mark.parametrize("bad", [{"timestep_fs": 0.0}, {"steps": 0}, {"interval": 0}])
def test_md_arguments_are_checked(tmp_path, bad):
    from mlip.simulate.md import run_md

    with pytest.raises(ValueError, match="timestep > 0"):
        run_md(bulk("Cu", "fcc", a=3.6), EMT(), tmp_path, **bad)


def test_compile_option_reaches_every_engine(model_file, tmp_path, monkeypatch):
    """`--compile` of mlip-md (one structure and batched) and mlip-relax (one by one and batched)
    puts the network under torch.compile. Compiling itself (a minute per graph) is replaced by a
    recording stand-in; that compiled networks equal eager ones is tests/test_compiled.py's job."""
    from mlip.export import compiled

    compiled_ids = []

    def record(potential, mode=None):
        compiled_ids.append(id(potential))
        return potential

    monkeypatch.setattr(compiled, "compile_potential", record)
    cells = [bulk("Cu", "fcc", a=a, cubic=True) for a in (3.58, 3.62)]
    ase.io.write(tmp_path / "cells.xyz", cells)
    md = [str(model_file), str(tmp_path / "cells.xyz"), "--steps", "2", "--interval", "1"]
    assert md_main(md + ["--out", str(tmp_path / "md")]) == 0 and compiled_ids == []  # off unless asked
    assert md_main(md + ["--out", str(tmp_path / "md_c"), "--compile"]) == 0 and len(compiled_ids) == 1
    relax = [str(model_file), str(tmp_path / "cells.xyz"), "--max-steps", "2", "--compile"]
    assert relax_main(relax + ["--out", str(tmp_path / "r")]) == 0 and len(compiled_ids) == 2
    assert relax_main(relax + ["--out", str(tmp_path / "rb"), "--batched"]) == 0 and len(compiled_ids) == 3
    if importlib.util.find_spec("torch_sim") is not None:
        assert md_main(md + ["--out", str(tmp_path / "mb"), "--batched", "--ensemble", "nvt", "--compile"]) == 0
        assert len(compiled_ids) == 4
