"""The bad-input matrix of issue 13: malformed, truncated, degenerate and absurd inputs in every
format mlip reads, each with what a user must see. Used by `benchmarks.hostile_inputs` (one
process per case, with limits) and `tests/test_bad_inputs.py` (in process, in CI).

A case writes its files into a folder and returns the paths to give `mlip-preprocess`; `bad`
cases must be refused with exit 2 and one line naming the file, good controls must pass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "data"
SILICON_POSCAR = """Si8
1.0
5.43 0.0 0.0
0.0 5.43 0.0
0.0 0.0 5.43
Si
{count}
Direct
0.00 0.00 0.00
0.50 0.50 0.00
0.50 0.00 0.50
0.00 0.50 0.50
0.25 0.25 0.25
0.75 0.75 0.25
0.75 0.25 0.75
0.25 0.75 0.75
"""


@dataclass(frozen=True)
class Case:
    """One input for `mlip-preprocess` (cutoff 5 Å unless `arguments` say otherwise)."""

    name: str
    format: str
    build: Callable[[Path], list[Path]]
    bad: bool = True
    arguments: tuple[str, ...] = ("--cutoff", "5.0")
    file_size_limit: int | None = None  # bytes a process may write per file (a full disk)
    names: tuple[str, ...] = field(default=())  # text the message must hold (default: an input's name)


def classify(case: Case, exit_code: int | None, stderr: str, paths: list[str]) -> str:
    """refused / unclear / traceback / crash / hang / silent for bad cases; accepted / rejected for good ones."""
    if exit_code is None:
        return "hang"
    if "Traceback" in stderr:
        return "traceback"
    if not case.bad:
        return "accepted" if exit_code == 0 else "rejected"
    if exit_code == 0:
        return "silent"
    if exit_code != 2:
        return "crash"
    errors = [line for line in stderr.strip().splitlines() if ": error: " in line]
    needles = case.names or [Path(p).name for p in paths]
    named = len(errors) == 1 and any(needle in errors[0] for needle in needles)
    return "refused" if named and stderr.strip().splitlines()[-1] == errors[0] else "unclear"


# ----- writers ---------------------------------------------------------------------------------
def _text(name: str, content: str | bytes) -> Callable[[Path], list[Path]]:
    """A case writing one file (text as UTF-8, bytes as they are)."""
    def build(folder: Path) -> list[Path]:
        path = folder / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return [path]
    return build


def _xyz_frame(symbols: list[str], positions, lattice: str | None = None, energy: str = "-1.0",
               count: int | None = None, forces: bool = True) -> str:
    header = f'Lattice="{lattice}" pbc="T T T" ' if lattice else 'pbc="F F F" '
    props = "species:S:1:pos:R:3" + (":forces:R:3" if forces else "")
    lines = [str(len(symbols) if count is None else count), f"{header}Properties={props} energy={energy}"]
    for s, p in zip(symbols, positions):
        lines.append(f"{s} {p[0]:.8f} {p[1]:.8f} {p[2]:.8f}" + (" 0.0 0.0 0.0" if forces else ""))
    return "\n".join(lines) + "\n"


WATER = (["O", "H", "H"], [[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]])
SILICON = (["Si", "Si"], [[0.0, 0.0, 0.0], [1.3575, 1.3575, 1.3575]])


def _npz(name: str, **arrays) -> Callable[[Path], list[Path]]:
    def build(folder: Path) -> list[Path]:
        path = folder / name
        np.savez(path, **arrays)
        return [path]
    return build


def _aspirin(**changes) -> dict:
    with np.load(DATA / "rmd17_aspirin_train200.npz") as archive:
        arrays = {k: archive[k][:5] if archive[k].ndim > 1 or k == "energies" else archive[k] for k in archive.files}
    arrays.update(changes)
    return arrays


def _mptrj(records) -> Callable[[Path], list[Path]]:
    return _text("mptrj.json", json.dumps(records))


def _mptrj_record(**changes) -> dict:
    structure = {"@module": "pymatgen.core.structure", "@class": "Structure", "charge": 0,
                 "lattice": {"matrix": [[5.43, 0, 0], [0, 5.43, 0], [0, 0, 5.43]], "pbc": [True, True, True]},
                 "sites": [{"species": [{"element": "Si", "occu": 1}], "abc": [0, 0, 0], "xyz": [0, 0, 0],
                            "label": "Si", "properties": {}},
                           {"species": [{"element": "Si", "occu": 1}], "abc": [0.25, 0.25, 0.25],
                            "xyz": [1.3575, 1.3575, 1.3575], "label": "Si", "properties": {}}]}
    record = {"structure": structure, "uncorrected_total_energy": -10.8, "corrected_total_energy": -10.8,
              "energy_per_atom": -5.4, "ef_per_atom": 0.0, "e_per_atom_relaxed": -5.4, "force": [[0, 0, 0], [0, 0, 0]],
              "stress": [[0, 0, 0], [0, 0, 0], [0, 0, 0]], "magmom": None, "mp_id": "mp-149"}
    record.update(changes)
    return {"mp-149": {"mp-149-0-0": record}}


def _folder(files: dict[str, str]) -> Callable[[Path], list[Path]]:
    def build(folder: Path) -> list[Path]:
        inputs = folder / "inputs"
        inputs.mkdir()
        for name, content in files.items():
            (inputs / name).write_text(content)
        return [inputs]
    return build


def _vasprun(truncate: bool) -> Callable[[Path], list[Path]]:
    def build(folder: Path) -> list[Path]:
        from tests.test_io_vasp import write_vasprun

        path = folder / "vasprun.xml"
        fractional = [[0, 0, 0], [0.25, 0.25, 0.25]]
        steps = [(fractional, -10.8 + 0.01 * k, [[0, 0, 0], [0, 0, 0]], [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
                 for k in range(3)]
        write_vasprun(path, ["Si", "Si"], np.eye(3) * 5.43, steps)
        if truncate:
            text = path.read_text()
            path.write_text(text[:int(len(text) * 0.7)])
        return [path]
    return build


def _big_good_xyz(folder: Path) -> list[Path]:
    path = folder / "many.xyz"
    path.write_text("".join(_xyz_frame(*WATER, energy=str(-10.0 - k)) for k in range(300)))
    return [path]


GOOD_WATER = _xyz_frame(*WATER)
CASES: list[Case] = [
    # controls: must pass
    Case("good_extxyz", "extxyz", _text("water.xyz", GOOD_WATER), bad=False),
    Case("good_npz", "npz", _npz("aspirin.npz", **_aspirin()), bad=False),
    Case("good_poscar", "poscar", _text("POSCAR", SILICON_POSCAR.format(count=8)), bad=False),
    Case("good_vasprun", "vasp-xml", _vasprun(truncate=False), bad=False),
    Case("good_mptrj", "mptrj", _mptrj(_mptrj_record()), bad=False),
    Case("folder_with_a_stray_text_file", "folder", _folder({"water.xyz": GOOD_WATER, "notes.txt": "my notes\n"}),
         bad=False),
    # empty and unreadable
    Case("empty_file", "extxyz", _text("empty.xyz", "")),
    Case("whitespace_only", "extxyz", _text("blank.xyz", "\n\n  \n")),
    Case("zero_atoms_frame", "extxyz", _text("zero.xyz", "0\nProperties=species:S:1:pos:R:3 energy=1.0\n")),
    Case("empty_folder", "folder", _folder({})),
    Case("folder_of_unknown_formats", "folder", _folder({"notes.txt": "hello\n", "README": "x\n"})),
    Case("npz_with_zero_frames", "npz", _npz("none.npz", **_aspirin(coords=np.zeros((0, 21, 3)),
                                                                    energies=np.zeros(0), forces=np.zeros((0, 21, 3))))),
    Case("binary_garbage_xyz", "extxyz", _text("garbage.xyz", bytes(range(256)) * 8)),
    Case("not_utf8_xyz", "extxyz", _text("latin.xyz", GOOD_WATER.replace("energy=-1.0", "energy=-1.0 note=\xe9t\xe9")
                                          .encode("latin-1"))),
    Case("mptrj_not_json", "mptrj", _text("broken.json", '{"mp-1": {"a": ')),
    Case("mptrj_list_not_dict", "mptrj", _text("list.json", "[1, 2, 3]")),
    Case("npz_not_an_archive", "npz", _text("fake.npz", "this is text")),
    Case("unknown_extension", "unknown", _text("structure.qqq", "hello\n")),
    # truncated and inconsistent
    Case("truncated_extxyz", "extxyz", _text("cut.xyz", GOOD_WATER + GOOD_WATER.rsplit("\n", 2)[0] + "\n")),
    Case("atom_count_above_lines", "extxyz", _text("count.xyz", _xyz_frame(*WATER, count=5))),
    Case("truncated_vasprun", "vasp-xml", _vasprun(truncate=True)),
    Case("poscar_count_mismatch", "poscar", _text("POSCAR", SILICON_POSCAR.format(count=9))),
    Case("poscar_fewer_atoms_than_lines", "poscar", _text("CONTCAR", SILICON_POSCAR.format(count=7))),
    Case("npz_energy_count_mismatch", "npz", _npz("short.npz", **_aspirin(energies=np.zeros(3)))),
    Case("npz_forces_wrong_shape", "npz", _npz("shape.npz", **_aspirin(forces=np.zeros((5, 20, 3))))),
    Case("npz_numbers_not_matching_coords", "npz", _npz("z.npz", **_aspirin(nuclear_charges=np.ones(20, int)))),
    # wrong values
    Case("non_integer_atomic_number", "npz", _npz("frac.npz", **_aspirin(
        nuclear_charges=np.array([6.5] + [1.0] * 20)))),
    Case("zero_atomic_number", "npz", _npz("zero_z.npz", **_aspirin(nuclear_charges=np.array([0] + [1] * 20)))),
    Case("unknown_symbol", "extxyz", _text("xx.xyz", _xyz_frame(["Xx", "H", "H"], WATER[1]))),
    Case("energy_not_a_number", "extxyz", _text("text_energy.xyz", _xyz_frame(*WATER, energy="abc"))),
    Case("nan_energy", "extxyz", _text("nan.xyz", _xyz_frame(*WATER, energy="nan"))),
    Case("nan_position", "extxyz", _text("nanpos.xyz", GOOD_WATER.replace("0.96000000", "nan", 1))),
    Case("atoms_on_top_of_each_other", "extxyz", _text("overlap.xyz", _xyz_frame(
        ["O", "H", "H"], [[0, 0, 0], [0.01, 0, 0], [-0.24, 0.93, 0]]))),
    Case("absurd_cif_species", "cif", _text("bad.cif", "data_x\n_cell_length_a 5\n_cell_length_b 5\n_cell_length_c 5\n"
                                           "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n"
                                           "_symmetry_space_group_name_H-M 'P 1'\nloop_\n_atom_site_label\n"
                                           "_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n"
                                           "_atom_site_fract_z\nQq1 Qq 0 0 0\n")),
    Case("mptrj_energy_is_text", "mptrj", _mptrj(_mptrj_record(uncorrected_total_energy="lots",
                                                               corrected_total_energy="lots"))),
    Case("mptrj_forces_wrong_length", "mptrj", _mptrj(_mptrj_record(force=[[0, 0, 0]]))),
    Case("mptrj_stress_is_text", "mptrj", _mptrj(_mptrj_record(stress="none"))),
    # geometry the neighbour list cannot or should not handle
    Case("tiny_cell_height", "extxyz", _text("flat.xyz", _xyz_frame(*SILICON, lattice="5.43 0 0 0 5.43 0 0 0 0.001"))),
    Case("near_singular_cell", "extxyz", _text("sliver.xyz", _xyz_frame(
        *SILICON, lattice="5.43 0 0 5.43 0.0001 0 0 0 5.43"))),
    Case("huge_coordinates_molecule", "extxyz", _text("far.xyz", _xyz_frame(
        ["O", "H", "H"], [[0, 0, 0], [0.96, 0, 0], [1e9, 1e9, 1e9]]))),
    Case("coordinates_near_float_max", "extxyz", _text("max.xyz", _xyz_frame(
        ["O", "H", "H"], [[0, 0, 0], [0.96, 0, 0], [1e300, 0, 0]]))),
    # a vast periodic cell around two atoms is an isolated pair, and vesin's cell list handles it
    Case("huge_periodic_cell_few_atoms", "extxyz", _text("vast.xyz", _xyz_frame(
        *SILICON, lattice="1e7 0 0 0 1e7 0 0 0 1e7")), bad=False),
    # arguments and the output side
    Case("negative_cutoff", "argument", _text("water.xyz", GOOD_WATER), arguments=("--cutoff", "-1"),
         names=("cutoff must be positive",)),
    Case("output_disk_full", "output", _big_good_xyz, file_size_limit=4096, names=("/out/",)),
]
