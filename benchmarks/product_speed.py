"""Product basis: channel-wise Clebsch-Gordan product (sparse) against the Gaunt product on a sphere grid.

    python -m benchmarks.product_speed [--atoms 512] [--channels 32] [--threads 1]

Times one product x ⊗ y → l ≤ lmax_out for the shapes the equivariant presets use, with
element-dependent weights: forward + the gradient with respect to x (what forces need), and
the same with that gradient differentiated again (what force training needs). Best of 5
rounds per configuration; writes benchmarks/results/product_speed.json.
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.common import best_time, write_result
from mlip.nn.gaunt import GauntProduct, gaunt_resolution
from mlip.nn.product import ChannelwiseProduct

SHAPES = [(3, 3, 3), (3, 3, 1), (2, 2, 2), (2, 2, 0)]  # (lmax1, lmax2, lmax_out): medium preset's products


def time_product(product: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, onehot: torch.Tensor,
                 double: bool) -> float:
    """Best seconds of forward + d(Σ out²)/dx, and with `double` its own backward to the weights."""
    def call():
        out = product(x, y, onehot)
        grad, = torch.autograd.grad(out.pow(2).sum(), [x], create_graph=double)
        if double:
            grad.sum().backward()
    return best_time(call, repeats=5, min_seconds=0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--atoms", type=int, default=512)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--species", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    n, c = args.atoms, args.channels
    onehot = torch.nn.functional.one_hot(torch.randint(0, args.species, (n,)), args.species).float()
    rows = []
    for lmax1, lmax2, lmax_out in SHAPES:
        x = torch.randn(n, c, (lmax1 + 1) ** 2, requires_grad=True)
        y = torch.randn(n, c, (lmax2 + 1) ** 2)
        tensor = ChannelwiseProduct(c, lmax1, lmax2, lmax_out, num_species=args.species)
        gaunt = GauntProduct(c, lmax1, lmax2, lmax_out, num_species=args.species)
        row = {"lmax1": lmax1, "lmax2": lmax2, "lmax_out": lmax_out, "clebsch_gordan_terms": tensor.num_terms,
               "gaunt_grid": list(gaunt_resolution(lmax1, lmax2, lmax_out))}
        for double in (False, True):
            key = "train" if double else "forces"
            row[f"tensor_ms_{key}"] = time_product(tensor, x, y, onehot, double) * 1e3
            row[f"gaunt_ms_{key}"] = time_product(gaunt, x, y, onehot, double) * 1e3
            row[f"gaunt_over_tensor_{key}"] = row[f"gaunt_ms_{key}"] / row[f"tensor_ms_{key}"]
        rows.append(row)
        print(f"l {lmax1} x {lmax2} -> {lmax_out}: forces {row['tensor_ms_forces']:.2f} vs {row['gaunt_ms_forces']:.2f} ms "
              f"(gaunt/tensor {row['gaunt_over_tensor_forces']:.2f}); training {row['tensor_ms_train']:.2f} vs "
              f"{row['gaunt_ms_train']:.2f} ms ({row['gaunt_over_tensor_train']:.2f})", flush=True)
    write_result("product_speed", {"atoms": n, "channels": c, "species": args.species, "threads": args.threads,
                                   "rows": rows}, args.out)


if __name__ == "__main__":
    main()
