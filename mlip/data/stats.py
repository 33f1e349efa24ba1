"""Dataset statistics that add up over shards: reference energies, energy and force scales.

Each shard stores sums (normal equations of the per-element least-squares fit and moments);
the manifest adds them up, so statistics of any number of shards cost O(shards), not O(frames).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

N_Z = 119  # index = atomic number; 0 unused


@dataclass
class StatSums:
    """Additive sums over frames (only frames with an energy enter the energy sums)."""

    n_frames: int = 0
    n_atoms: int = 0
    n_edges: int = 0
    n_energy: int = 0
    n_stress: int = 0
    n_force_components: int = 0
    sum_force_sq: float = 0.0
    element_counts: np.ndarray = field(default_factory=lambda: np.zeros(N_Z))
    xtx: np.ndarray = field(default_factory=lambda: np.zeros((N_Z, N_Z)))
    xty: np.ndarray = field(default_factory=lambda: np.zeros(N_Z))
    sum_x_per_atom: np.ndarray = field(default_factory=lambda: np.zeros(N_Z))
    sum_e_per_atom: float = 0.0
    xx_per_atom_sq: np.ndarray = field(default_factory=lambda: np.zeros((N_Z, N_Z)))
    xe_per_atom_sq: np.ndarray = field(default_factory=lambda: np.zeros(N_Z))
    sum_e_per_atom_sq: float = 0.0
    isolated_energy_sum: np.ndarray = field(default_factory=lambda: np.zeros(N_Z))
    isolated_count: np.ndarray = field(default_factory=lambda: np.zeros(N_Z))

    ARRAYS = ("element_counts", "xtx", "xty", "sum_x_per_atom", "xx_per_atom_sq", "xe_per_atom_sq",
              "isolated_energy_sum", "isolated_count")
    SCALARS = ("n_frames", "n_atoms", "n_edges", "n_energy", "n_stress", "n_force_components",
               "sum_force_sq", "sum_e_per_atom", "sum_e_per_atom_sq")

    @classmethod
    def from_arrays(cls, numbers: np.ndarray, atom_ptr: np.ndarray, energy: np.ndarray, forces: np.ndarray,
                    stress: np.ndarray, n_edges: int) -> "StatSums":
        """Sums for one shard: numbers (N,), atom_ptr (F+1,), energy (F,), forces (N,3), stress (F,3,3)."""
        n_frames = len(atom_ptr) - 1
        frame_of_atom = np.repeat(np.arange(n_frames), np.diff(atom_ptr))
        counts = np.zeros((n_frames, N_Z))
        np.add.at(counts, (frame_of_atom, numbers), 1.0)
        n = np.diff(atom_ptr).astype(float)
        has_e = np.isfinite(energy)
        x, e, n_e = counts[has_e], energy[has_e], n[has_e]
        xn, en = x / n_e[:, None], e / n_e
        finite_f = np.isfinite(forces)
        return cls(
            n_frames=n_frames,
            n_atoms=int(len(numbers)),
            n_edges=int(n_edges),
            n_energy=int(has_e.sum()),
            n_stress=int(np.isfinite(stress).all(axis=(1, 2)).sum()),
            n_force_components=int(finite_f.sum()),
            sum_force_sq=float(np.sum(forces[finite_f] ** 2)),
            element_counts=counts.sum(axis=0),
            xtx=x.T @ x,
            xty=x.T @ e,
            sum_x_per_atom=xn.sum(axis=0),
            sum_e_per_atom=float(en.sum()),
            xx_per_atom_sq=xn.T @ xn,
            xe_per_atom_sq=xn.T @ en,
            sum_e_per_atom_sq=float(en @ en),
        )

    def __add__(self, other: "StatSums") -> "StatSums":
        out = StatSums()
        for name in self.SCALARS + self.ARRAYS:
            setattr(out, name, getattr(self, name) + getattr(other, name))
        return out

    def to_dict(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(getattr(self, name)) for name in self.SCALARS + self.ARRAYS}

    @classmethod
    def from_dict(cls, values: dict) -> "StatSums":
        out = cls()
        for name in cls.SCALARS:
            setattr(out, name, type(getattr(out, name))(np.asarray(values[name])))
        for name in cls.ARRAYS:
            if name in values:  # shards from before isolated atoms were counted lack those sums
                setattr(out, name, np.asarray(values[name], dtype=float))
        return out

    @classmethod
    def from_isolated_atoms(cls, frames: list) -> "StatSums":
        """Sums holding only the energies (eV) of isolated-atom frames, by element."""
        out = cls()
        for frame in frames:
            out.isolated_energy_sum[int(frame.numbers[0])] += frame.energy
            out.isolated_count[int(frame.numbers[0])] += 1
        return out

    def isolated_atom_energies(self) -> dict[int, float]:
        """Mean energy (eV) of the isolated-atom frames of each element that has some."""
        return {int(z): float(self.isolated_energy_sum[z] / self.isolated_count[z])
                for z in np.nonzero(self.isolated_count)[0]}

    def elements(self) -> list[int]:
        """Atomic numbers present, ascending."""
        return [int(z) for z in np.nonzero(self.element_counts)[0]]

    def reference_energies(self) -> dict[int, float]:
        """Per-element energies (eV) minimising Σ (E - Σ_z n_z e_z)² over frames with energies.

        Solved on the normal equations with a pseudo-inverse, so a degenerate set (e.g. one
        molecule's conformations) gets the minimum-norm solution rather than an error.
        """
        z = self.elements()
        if self.n_energy == 0 or not z:
            return {zz: 0.0 for zz in z}
        a = self.xtx[np.ix_(z, z)]
        b = self.xty[z]
        solution = np.linalg.pinv(a, rcond=1e-10, hermitian=True) @ b
        return {zz: float(v) for zz, v in zip(z, solution)}

    def energy_moments(self) -> dict:
        """The per-atom energy sums of the elements present (JSON-able), enough to recompute
        `residual_energy_per_atom` for any reference energies (`from_energy_moments`)."""
        z = self.elements()
        return {"atomic_numbers": z, "n_energy": self.n_energy, "sum_e_per_atom": self.sum_e_per_atom,
                "sum_e_per_atom_sq": self.sum_e_per_atom_sq, "sum_x_per_atom": self.sum_x_per_atom[z].tolist(),
                "xe_per_atom_sq": self.xe_per_atom_sq[z].tolist(),
                "xx_per_atom_sq": self.xx_per_atom_sq[np.ix_(z, z)].tolist()}

    @classmethod
    def from_energy_moments(cls, moments: dict) -> "StatSums":
        """Sums holding only `energy_moments` (the rest zero)."""
        out, z = cls(), list(moments["atomic_numbers"])
        out.n_energy, out.sum_e_per_atom = int(moments["n_energy"]), float(moments["sum_e_per_atom"])
        out.sum_e_per_atom_sq = float(moments["sum_e_per_atom_sq"])
        out.sum_x_per_atom[z] = moments["sum_x_per_atom"]
        out.xe_per_atom_sq[z] = moments["xe_per_atom_sq"]
        out.xx_per_atom_sq[np.ix_(z, z)] = moments["xx_per_atom_sq"]
        return out

    def residual_energy_per_atom(self, references: dict[int, float]) -> tuple[float, float]:
        """Mean and standard deviation (eV/atom) of (E - Σ n_z e_z) / N over frames with energies."""
        if self.n_energy == 0:
            return 0.0, 0.0
        e = np.zeros(N_Z)
        for zz, value in references.items():
            e[zz] = value
        total = self.sum_e_per_atom - e @ self.sum_x_per_atom
        total_sq = self.sum_e_per_atom_sq - 2 * e @ self.xe_per_atom_sq + e @ self.xx_per_atom_sq @ e
        mean = total / self.n_energy
        variance = max(total_sq / self.n_energy - mean**2, 0.0)
        return float(mean), float(np.sqrt(variance))

    def force_rms(self) -> float:
        """Root mean square of all force components, eV/Å."""
        return float(np.sqrt(self.sum_force_sq / self.n_force_components)) if self.n_force_components else 0.0
