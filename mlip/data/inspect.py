"""Inspect a folder of shards: statistics from the manifest, one training batch, and a picture.

    python -m mlip.data.inspect SHARD_DIR [--plot data.png]

The plot shows the distribution of neighbour distances (a radial distribution within the
cutoff), of neighbours per atom, of energies per atom after subtracting the manifest's
reference energies, and of force components.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mlip.data.datamodule import ShardDataModule
from mlip.data.dataset import ShardDataset


def summarize(directory: Path) -> None:
    data = ShardDataset(directory)
    m = data.manifest
    print(f"{directory}: {m['n_structures']} structures, {m['n_atoms']} atoms, {m['n_edges']} edges "
          f"in {len(m['shards'])} shard(s); cutoff {m['cutoff']} Å")
    counts = ", ".join(f"{e} ({m['element_counts'][e]})" for e in m["elements"])
    print(f"  elements: {counts}")
    print("  reference energies (eV): " + ", ".join(f"{e} {v:.4f}" for e, v in m["reference_energies"].items()))
    residual = m["energy_per_atom_residual"]
    print(f"  energy/atom after references: mean {residual['mean']:.2e} eV, std {residual['std'] * 1e3:.2f} meV; "
          f"force RMS {m['force_rms']:.3f} eV/Å; mean neighbours {m['mean_neighbors']:.1f}")
    module = ShardDataModule(directory, val_fraction=0.1, batch_size=8)
    batch = next(iter(module.train_dataloader()))
    print(f"  a training batch: {batch.num_graphs} structures, {batch.positions.shape[0]} atoms, "
          f"{batch.receivers.numel()} edges; edge vectors {tuple(batch.edge_vectors().shape)}")


def plot(directory: Path, path: Path, max_structures: int = 500) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = ShardDataset(directory)
    m = data.manifest
    refs = {z: m["reference_energies"][e] for z, e in zip(m["atomic_numbers"], m["elements"])}
    picks = np.linspace(0, len(data) - 1, min(len(data), max_structures)).astype(int)
    distances, neighbours, energies, forces = [], [], [], []
    for i in picks:
        g = data[int(i)]
        distances.append(np.linalg.norm(g.edge_vectors(), axis=1))
        neighbours.append(np.bincount(g.receivers, minlength=g.n_atoms))
        if np.isfinite(g.energy):
            energies.append((g.energy - sum(refs[int(z)] for z in g.numbers)) / g.n_atoms)
        forces.append(g.forces[np.isfinite(g.forces)])
    fig, axes = plt.subplots(2, 2, figsize=(9, 6.5))
    panels = [(np.concatenate(distances), "neighbour distance (Å)"), (np.concatenate(neighbours), "neighbours per atom"),
              (np.array(energies) * 1e3, "energy per atom − references (meV)"), (np.concatenate(forces), "force component (eV/Å)")]
    for ax, (values, label) in zip(axes.flat, panels):
        if len(values):
            integer = np.issubdtype(values.dtype, np.integer)
            bins = np.arange(values.min(), values.max() + 2) - 0.5 if integer else 60
            ax.hist(values, bins=bins, color="tab:blue", alpha=0.8)
        ax.set_xlabel(label)
        ax.set_ylabel("count")
    fig.suptitle(f"{directory.name}: {len(picks)} of {len(data)} structures, cutoff {m['cutoff']} Å")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"  plot: {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mlip.data.inspect", description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--plot", type=Path, default=None, help="write a PNG of the data's distributions")
    args = parser.parse_args(argv)
    summarize(args.directory)
    if args.plot:
        plot(args.directory, args.plot)
    print(f"next: train on these shards with  mlip-train --data.train {args.directory} --model.model equivariant_medium "
          f"--run_dir RUN")


if __name__ == "__main__":
    main()
