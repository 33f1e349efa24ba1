"""The physics every potential must obey, as a public check anyone can run on their model.

    from mlip.testing import check_potential
    report = check_potential(mlip.load("run/model.mlip"))     # or any Potential
    print(report)                 # one line per check: measured error, tolerance, pass/fail
    assert report.passed

Checks (on a random molecule and a strained, rattled crystal of the model's own elements, or on
frames you give): rotations and reflections (energy invariant, forces and stress equivariant;
for models that only learn the symmetry pass `exact_rotations=False` to have the error measured
but not judged), translations and periodic wrapping, permutations, supercells (energy per atom,
stress), forces and stress against central finite differences, smoothness of a dimer's energy
and force at the cutoff, a batch equal to its structures one by one, and the ASE calculator equal
to the direct call. Tolerances follow the model's dtype (float64: ~1e-10 relative; float32: 1e-5).
Units: eV, Å, eV/Å, eV/Å³.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from mlip.graph import GraphBatch
from mlip.io import Frame


@dataclass
class Check:
    """One check: the largest error measured against its tolerance (both in the check's own units)."""

    name: str
    error: float
    tolerance: float
    judged: bool = True

    @property
    def passed(self) -> bool:
        return not self.judged or bool(self.error <= self.tolerance)


@dataclass
class PhysicsReport:
    """All checks of one potential; `passed` when every judged check is within its tolerance."""

    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]

    def __str__(self) -> str:
        lines = [f"{'check':<50}{'error':>12}{'tolerance':>12}  result"]
        for c in self.checks:
            verdict = "pass" if c.passed and c.judged else ("measured" if not c.judged else "FAIL")
            lines.append(f"{c.name:<50}{c.error:>12.2e}{c.tolerance:>12.1e}  {verdict}")
        return "\n".join(lines)


def evaluate(potential, frames: Frame | list[Frame], forces: bool = True, stress: bool = True) -> dict[str, np.ndarray]:
    """Direct call on one or several frames → NumPy energy (B,), forces (N, 3), stress (B, 3, 3)."""
    batch = GraphBatch.from_frames(frames if isinstance(frames, list) else [frames], potential.cutoff)
    out = potential(batch, forces=forces, stress=stress)
    return {k: v.detach().cpu().double().numpy() for k, v in out.items()}


def moved(frame: Frame, positions=None, cell=None, numbers=None) -> Frame:
    """A copy of `frame` with new positions, cell or numbers."""
    return Frame(numbers=frame.numbers if numbers is None else numbers,
                 positions=frame.positions if positions is None else positions,
                 cell=frame.cell if cell is None else cell, pbc=frame.pbc)


def random_orthogonal(seed: int, reflect: bool) -> np.ndarray:
    """A random rotation (det +1) or, with `reflect`, a rotation-reflection (det −1)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if (np.linalg.det(q) < 0) != reflect:
        q[:, 0] *= -1
    return q


def finite_difference_forces(potential, frame: Frame, atoms: list[int], h: float = 1e-4) -> np.ndarray:
    """−dE/dx of `atoms` (len(atoms), 3) by central differences with step `h` Å."""
    result = np.zeros((len(atoms), 3))
    for a, i in enumerate(atoms):
        for k in range(3):
            energies = []
            for sign in (1, -1):
                positions = frame.positions.copy()
                positions[i, k] += sign * h
                energies.append(evaluate(potential, moved(frame, positions), False, False)["energy"][0])
            result[a, k] = -(energies[0] - energies[1]) / (2 * h)
    return result


def finite_difference_stress(potential, frame: Frame, h: float = 1e-4) -> np.ndarray:
    """(1/V) dE/dε (3, 3) by central differences of symmetric strains ε (also right for models that
    are not rotation invariant)."""
    volume = abs(np.linalg.det(frame.cell))
    result = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            energies = []
            for sign in (1, -1):
                deformation = np.eye(3)
                deformation[a, b] += sign * h / 2
                deformation[b, a] += sign * h / 2
                energies.append(evaluate(potential, moved(frame, frame.positions @ deformation,
                                                          frame.cell @ deformation), False, False)["energy"][0])
            result[a, b] = (energies[0] - energies[1]) / (2 * h) / volume
    return result


def dimer_energy(potential, z: int, distance: float) -> tuple[float, float]:
    """Energy (eV) and force on atom 1 along the bond (eV/Å) of a Z–Z dimer at `distance` Å."""
    frame = Frame(numbers=np.array([z, z]), positions=np.array([[0.0, 0.0, 0.0], [distance, 0.0, 0.0]]))
    out = evaluate(potential, frame, True, False)
    return float(out["energy"][0]), float(out["forces"][1, 0])


def random_molecule(elements: list[int], atoms: int = 10, seed: int = 0) -> Frame:
    """A compact random cluster of `elements` (cycled), no two atoms closer than 1.0 Å."""
    rng = np.random.default_rng(seed)
    positions: list[np.ndarray] = []
    while len(positions) < atoms:
        candidate = rng.uniform(-2.2, 2.2, 3)
        if all(np.linalg.norm(candidate - p) > 1.0 for p in positions):
            positions.append(candidate)
    numbers = np.array([elements[i % len(elements)] for i in range(atoms)])
    return Frame(numbers=numbers, positions=np.array(positions))


def random_crystal(elements: list[int], seed: int = 0) -> Frame:
    """A strained (triclinic), rattled 2×2×2 fcc cell (32 atoms, nearest neighbours ~2.5 Å) of `elements`."""
    from ase.build import bulk

    rng = np.random.default_rng(seed)
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.03 * rng.standard_normal((3, 3))), scale_atoms=True)
    atoms.positions += 0.1 * rng.standard_normal(atoms.positions.shape)
    numbers = np.array([elements[i % len(elements)] for i in rng.permutation(len(atoms))])
    return Frame(numbers=numbers, positions=atoms.positions, cell=atoms.cell.array, pbc=atoms.pbc)


def check_potential(potential, molecule: Frame | None = None, crystal: Frame | None = None,
                    exact_rotations: bool = True, seed: int = 0) -> PhysicsReport:
    """Run every physics check on `potential` (see the module doc) and return the report.

    Call on a float64 model for tight tolerances (`mlip.load(path, dtype=torch.float64)`);
    float32 models are judged at 1e-5 relative. Finite differences use steps of 1e-4 Å (1e-3 in
    float32), so their tolerances are 1e-5 relative (float32: 2e-2): a wrong derivative is off by O(1).
    """
    potential = potential.eval()
    elements = [int(z) for z in potential.atomic_numbers]
    molecule = molecule or random_molecule(elements, seed=seed)
    crystal = crystal or random_crystal(elements, seed=seed)
    double = potential.dtype == torch.float64
    exact, fd_tol, step = (1e-10, 1e-5, 1e-4) if double else (1e-5, 2e-2, 1e-3)
    report = PhysicsReport()
    add = report.checks.append
    for name, frame in (("molecule", molecule), ("crystal", crystal)):
        base = evaluate(potential, frame)
        scale_e, scale_f = max(abs(base["energy"][0]), 1.0), max(np.abs(base["forces"]).max(), 1e-3)
        for reflect in (False, True):
            q = random_orthogonal(seed + 7, reflect)
            turned = evaluate(potential, moved(frame, frame.positions @ q.T, frame.cell @ q.T))
            error = max(abs(turned["energy"][0] - base["energy"][0]) / scale_e,
                        np.abs(turned["forces"] - base["forces"] @ q.T).max() / scale_f)
            if name == "crystal":
                error = max(error, np.abs(turned["stress"][0] - q @ base["stress"][0] @ q.T).max()
                            / max(np.abs(base["stress"]).max(), 1e-6))
            add(Check(f"{name}: {'reflection' if reflect else 'rotation'} (relative)", float(error), exact,
                      judged=exact_rotations))
        shifted = frame.positions + np.array([1.3, -7.1, 25.0])
        if name == "crystal":  # other periodic images too: wrap into the cell
            shifted = (np.linalg.solve(frame.cell.T, shifted.T).T % 1.0) @ frame.cell
        out = evaluate(potential, moved(frame, shifted))
        add(Check(f"{name}: translation (relative)", float(max(abs(out["energy"][0] - base["energy"][0]) / scale_e,
                                                                np.abs(out["forces"] - base["forces"]).max() / scale_f)),
                  exact))
        order = np.random.default_rng(seed + 3).permutation(len(frame.numbers))
        out = evaluate(potential, moved(frame, frame.positions[order], numbers=frame.numbers[order]))
        add(Check(f"{name}: permutation (relative)", float(max(abs(out["energy"][0] - base["energy"][0]) / scale_e,
                                                                np.abs(out["forces"] - base["forces"][order]).max()
                                                                / scale_f)), exact))
        atoms = sorted({0, len(frame.numbers) // 2, len(frame.numbers) - 1})
        numeric = finite_difference_forces(potential, frame, atoms, h=step)
        add(Check(f"{name}: forces = −dE/dx (relative)", float(np.abs(numeric - base["forces"][atoms]).max() / scale_f),
                  fd_tol))
    base = evaluate(potential, crystal)
    numeric = finite_difference_stress(potential, crystal, h=step)
    add(Check("crystal: stress = (1/V) dE/dε (relative)",
              float(np.abs(numeric - base["stress"][0]).max() / max(np.abs(base["stress"][0]).max(), 1e-6)), fd_tol))
    big = _supercell(crystal)
    out = evaluate(potential, big)
    add(Check("crystal: 2×2×2 supercell, energy per atom (eV)",
              float(abs(out["energy"][0] / len(big.numbers) - base["energy"][0] / len(crystal.numbers))),
              exact * max(abs(base["energy"][0]) / len(crystal.numbers), 1.0)))
    add(Check("crystal: 2×2×2 supercell, stress (eV/Å³)", float(np.abs(out["stress"][0] - base["stress"][0]).max()),
              exact * max(np.abs(base["stress"][0]).max(), 1e-3)))
    add(_cutoff_check(potential, elements[0], exact))
    together = evaluate(potential, [molecule, crystal])
    alone = [evaluate(potential, molecule), base]
    error = max(abs(together["energy"][k] - alone[k]["energy"][0]) / max(abs(alone[k]["energy"][0]), 1.0) for k in (0, 1))
    add(Check("batch = one structure at a time (relative)", float(error), exact))
    add(_calculator_check(potential, crystal, base, exact))
    return report


def _supercell(frame: Frame) -> Frame:
    shifts = np.array([[i, j, k] for i in range(2) for j in range(2) for k in range(2)], dtype=float)
    positions = (frame.positions[None, :, :] + (shifts @ frame.cell)[:, None, :]).reshape(-1, 3)
    return Frame(numbers=np.tile(frame.numbers, 8), positions=positions, cell=2 * frame.cell, pbc=frame.pbc)


def _cutoff_check(potential, z: int, exact: float) -> Check:
    """Energy and force of a dimer just inside and outside the cutoff: continuous, force → 0."""
    cutoff = potential.cutoff
    inside, force_inside = dimer_energy(potential, z, cutoff - 1e-4)
    outside, force_outside = dimer_energy(potential, z, cutoff + 1e-4)
    isolated, _ = dimer_energy(potential, z, 100.0)
    scale = max(abs(isolated), 1.0)
    error = max(abs(inside - outside) / scale, abs(outside - isolated) / scale, abs(force_inside) * 1e-4 / scale,
                abs(force_outside))
    return Check("dimer at the cutoff: energy and force continuous", float(error), max(exact, 1e-9) * 10)


def _calculator_check(potential, frame: Frame, direct: dict[str, np.ndarray], exact: float) -> Check:
    from mlip.calculator import MLIPCalculator

    atoms = frame.to_atoms()
    atoms.calc = MLIPCalculator(potential)
    s = direct["stress"][0]
    error = max(abs(atoms.get_potential_energy() - direct["energy"][0]) / max(abs(direct["energy"][0]), 1.0),
                np.abs(atoms.get_forces() - direct["forces"]).max() / max(np.abs(direct["forces"]).max(), 1e-3),
                np.abs(atoms.get_stress() - [s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]]).max()
                / max(np.abs(s).max(), 1e-6))
    return Check("ASE calculator = direct call (relative)", float(error), exact)
