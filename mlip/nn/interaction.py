"""One message-passing layer of the equivariant network."""

from __future__ import annotations

import torch
from e3nn import nn as enn
from e3nn import o3
from torch import nn

from mlip.nn.frozen import FrozenDenseLinear, FrozenDenseSpeciesProduct
from mlip.nn.irreps import to_block_layout
from mlip.nn.linear import PathLinear
from mlip.nn.message import EquivariantConvolution
from mlip.nn.product import ProductBasis
from mlip.nn.radial import RadialSettings
from mlip.nn.segments import NeighbourSegments
from mlip.nn.sphere_grid import SphereGridActivation


def gated(irreps: o3.Irreps) -> tuple[o3.Irreps, nn.Module]:
    """A gate nonlinearity for `irreps` and the irreps its input needs (scalars + gates + the rest)."""
    scalars = o3.Irreps([(mul, ir) for mul, ir in irreps if ir.l == 0])
    others = o3.Irreps([(mul, ir) for mul, ir in irreps if ir.l > 0])
    if not others:  # scalars only: a plain SiLU
        return irreps, enn.Activation(irreps, [torch.nn.functional.silu] * len(irreps))
    gates = o3.Irreps([(mul, "0e") for mul, _ in others])
    gate = enn.Gate(scalars, [torch.nn.functional.silu] * len(scalars), gates,
                    [torch.sigmoid] * len(gates), others)
    return gate.irreps_in, gate


class InteractionBlock(nn.Module):
    """h ← σ( Linear(ProductBasis(Linear(conv(Linear(h))))) + SkipTP(h, species) ).

    conv: `EquivariantConvolution` (spline or Bessel+MLP radial) builds the neighbour sum A
    with every l ≤ `a_lmax` (default: the output's lmax; MACE keeps l ≤ 3 here while its
    hidden features stop at l = 1); ProductBasis raises the body order and contracts A to the
    output irreps (element-dependent weights with `species_weights`; `product` "tensor" or
    "gaunt", see `ProductBasis`); the skip connection is
    a tensor product with the one-hot species (NequIP's self-connection); σ is a gate
    (scalars: SiLU; l > 0: scaled by sigmoid-gated scalars), Facet's sphere-grid MLP
    (`"grid"`, approximately equivariant) or identity.

    Shapes: node_feats (N, irreps_in.dim), species_onehot (N, S), edge_sh (E, ·), lengths (E,), or one per
            bond (P,) with pair (E,) (`EquivariantConvolution`) → (N, irreps_out.dim).
    """

    def __init__(self, irreps_in: o3.Irreps, irreps_out: o3.Irreps, sh_irreps: o3.Irreps, num_species: int,
                 radial: RadialSettings, avg_num_neighbors: float = 10.0, correlation: int = 3, nonlinearity: str = "gate",
                 a_lmax: int | None = None, species_weights: bool = False, product: str = "tensor"):
        super().__init__()
        channels = irreps_out[0].mul
        lmax_out = max(ir.l for _, ir in irreps_out)
        a_lmax = lmax_out if a_lmax is None else a_lmax
        self.up = FrozenDenseLinear(irreps_in, irreps_in)
        self.conv = EquivariantConvolution(irreps_in, sh_irreps, a_lmax, radial, avg_num_neighbors)
        self.mix = PathLinear(channels, channels, self.conv.paths_per_l)
        reached = len(self.conv.paths_per_l) - 1  # below a_lmax where the harmonics stop lower
        self.product = ProductBasis(channels, reached, lmax_out, correlation, num_species, species_weights, product)
        self.output_ls = list(range(lmax_out + 1))
        species = o3.Irreps(f"{num_species}x0e")
        if nonlinearity == "gate":
            gate_in, self.activation = gated(irreps_out)
        elif nonlinearity == "grid":
            gate_in, self.activation = irreps_out, SphereGridActivation(irreps_out)
        elif nonlinearity == "none":
            gate_in, self.activation = irreps_out, nn.Identity()
        else:
            raise ValueError(f"nonlinearity must be 'gate', 'grid' or 'none', got '{nonlinearity}'")
        self.down = FrozenDenseLinear(irreps_out, gate_in)
        self.skip = FrozenDenseSpeciesProduct(irreps_in, species, gate_in)
        self.irreps_out = irreps_out

    def forward(self, node_feats: torch.Tensor, species_onehot: torch.Tensor, edge_sh: torch.Tensor,
                lengths: torch.Tensor, receivers: torch.Tensor, senders: torch.Tensor,
                segments: NeighbourSegments | None = None, pair: torch.Tensor | None = None) -> torch.Tensor:
        messages = self.conv(self.up(node_feats), edge_sh, lengths, receivers, senders, segments, pair)
        products = self.product(self.mix(messages), species_onehot)                 # channel layout
        features = self.down(to_block_layout(products, self.output_ls))
        return self.activation(features + self.skip(node_feats, species_onehot))
