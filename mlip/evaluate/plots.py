"""PNG plots: learning curves from the metrics CSV, parity plots of predictions against labels."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def learning_curves(metrics_csv: str | Path, out: str | Path) -> Path | None:
    """Training loss and validation errors against epoch, from Lightning's CSVLogger file."""
    rows = list(csv.DictReader(open(metrics_csv))) if Path(metrics_csv).exists() else []
    if not rows:
        return None

    def series(key: str) -> tuple[np.ndarray, np.ndarray]:
        pairs = [(float(r["epoch"]), float(r[key])) for r in rows if r.get(key) not in (None, "")]
        return (np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])) if pairs else (np.array([]), np.array([]))

    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    panels = ((axes[0], "train_loss_epoch", "training loss (per epoch)", "loss (weighted MSE)", "loss"),
              (axes[0], "val_loss", "validation loss", "loss (weighted MSE)", "loss"),
              (axes[1], "val_energy_mae", "validation", "energy MAE (meV/atom)", "energy"),
              (axes[2], "val_forces_mae", "validation", "force MAE (meV/Å)", "forces"))
    for ax, key, label, ylabel, title in panels:
        x, y = series(key)
        if len(x):
            ax.plot(x, y, marker="o", ms=3, label=label)
            ax.set_yscale("log")
            ax.set_xlabel("epoch")
            ax.set_ylabel(ylabel)
            ax.set_title(title)
            ax.legend()
    fig.suptitle(f"learning curves: {Path(metrics_csv).parent.name or Path(metrics_csv).parent}")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return Path(out)


def parity(labels: dict[str, np.ndarray], predictions: dict[str, np.ndarray], out: str | Path, title: str = "") -> Path:
    """Predicted against reference energy per atom (relative to the reference mean, eV/atom), force
    components (eV/Å) and stress components (eV/Å³), with MAEs."""
    plt = _pyplot()
    panels = [(k, u) for k, u in (("energy_per_atom", "eV/atom"), ("forces", "eV/Å"), ("stress", "eV/Å³"))
              if k in labels and np.isfinite(labels[k]).any()]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.3 * len(panels), 4.1), squeeze=False)
    for ax, (key, unit) in zip(axes[0], panels):
        x, y = labels[key].ravel(), predictions[key].ravel()
        keep = np.isfinite(x) & np.isfinite(y)
        x, y = x[keep], y[keep]
        if key == "energy_per_atom":  # absolute energies (−10⁴ eV) hide the spread: plot about the mean
            offset = x.mean()
            x, y = x - offset, y - offset
            unit_label, note = f"{unit}, minus mean", f"\n(mean {offset:.3f} {unit} subtracted)"
        else:
            unit_label, note = unit, ""
        low, high = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        ax.plot([low, high], [low, high], color="grey", lw=1)
        ax.scatter(x, y, s=4, alpha=0.5)
        mae = np.abs(x - y).mean() * 1e3
        ax.set_title(f"{key.replace('_', ' ')}: MAE {mae:.2f} m{unit}{note}")
        ax.set_xlabel(f"reference ({unit_label})")
        ax.set_ylabel(f"predicted ({unit_label})")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return Path(out)
