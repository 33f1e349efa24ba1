"""A network defined outside mlip, registered, trained with mlip-train, saved and loaded back.

    python examples/third_party_architecture.py [--epochs 3] [--out third_party_run]

`ContinuousFilterNetwork` is a small SchNet-style invariant model (Schütt et al. 2018): species
embeddings updated by sums over neighbours of features × filters of the distance. It knows
nothing of mlip beyond the network interface of `mlip.models.registry`:

    Network(num_species, cutoff, **options)(species, edge_vectors, receivers, senders) -> (N,) energies

Registering it under a name is all mlip needs: `mlip-train` (here called in-process) builds it
from a preset file naming the architecture, `mlip.export.load` rebuilds it from the model file,
and the calculator runs it. An installed package would instead declare the entry point

    [project.entry-points."mlip.architectures"]
    continuous_filter = "my_package.networks:ContinuousFilterNetwork"

so that the `mlip-train` and `mlip-eval` commands find it without any code.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

import mlip
from mlip.nn.cutoff import PolynomialEnvelope
from mlip.nn.radial import BesselBasis

ROOT = Path(__file__).resolve().parents[1]


@mlip.register_architecture("continuous_filter")
class ContinuousFilterNetwork(nn.Module):
    """Invariant message passing: h_i ← h_i + Σ_j W(h_j ⊙ filter(r_ij)), per-atom energy from an MLP."""

    def __init__(self, num_species: int, cutoff: float, width: int = 32, num_layers: int = 2, num_basis: int = 8,
                 avg_num_neighbors: float = 10.0):
        super().__init__()
        self.num_species, self.norm = num_species, 1.0 / avg_num_neighbors
        self.species_embedding = nn.Embedding(num_species, width)
        self.basis, self.envelope = BesselBasis(cutoff, num_basis), PolynomialEnvelope(cutoff)
        self.filters = nn.ModuleList(nn.Sequential(nn.Linear(num_basis, width), nn.SiLU(), nn.Linear(width, width))
                                     for _ in range(num_layers))
        self.updates = nn.ModuleList(nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
                                     for _ in range(num_layers))
        self.readout = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, 1))

    def forward(self, species: torch.Tensor, edge_vectors: torch.Tensor, receivers: torch.Tensor,
                senders: torch.Tensor) -> torch.Tensor:
        lengths = torch.linalg.vector_norm(edge_vectors, dim=-1)
        radial = self.basis(lengths) * self.envelope(lengths).unsqueeze(-1)  # (E, num_basis), 0 at the cutoff
        h = self.species_embedding(species)
        for make_filter, update in zip(self.filters, self.updates):
            messages = h.index_select(0, senders) * make_filter(radial)
            h = h + update(torch.zeros_like(h).index_add_(0, receivers, messages) * self.norm)
        return self.readout(h).squeeze(-1)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default="third_party_run")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    preset = out / "continuous_filter.yaml"
    preset.write_text("architecture: continuous_filter\nwidth: 32\nnum_layers: 2\n")

    from mlip.train.cli import main as train

    train(["--run_dir", str(out / "run"), "--data.train", str(ROOT / "data" / "rmd17_aspirin_train200.npz"),
           "--data.val_fraction", "0.1", "--data.batch_size", "5", "--data.cutoff", "5.0",
           "--model.model", str(preset), "--trainer.max_epochs", str(args.epochs),
           "--trainer.enable_progress_bar", "false"])
    potential = mlip.load(out / "run" / "model.mlip")
    frames = mlip.io.read(ROOT / "data" / "rmd17_aspirin_test100.npz")[:10]
    errors = []
    for frame in frames:
        atoms = frame.to_atoms()
        atoms.calc = mlip.MLIPCalculator(potential)
        errors.append(abs(atoms.get_forces() - frame.forces).mean())
    result = {"architecture": potential.config["architecture"], "test_force_mae_eV_per_A": float(sum(errors) / len(errors))}
    print(f"{result['architecture']}: trained, saved and reloaded; force MAE on 10 test frames "
          f"{1e3 * result['test_force_mae_eV_per_A']:.0f} meV/Å")
    return result


if __name__ == "__main__":
    main()
