"""`EquivariantNetwork`: E(3)-equivariant message passing (NequIP/MACE family) → per-atom energies."""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

from mlip.nn.dropout import IrrepDropout
from mlip.nn.frozen import FrozenDenseLinear
from mlip.nn.interaction import InteractionBlock
from mlip.nn.irreps import hidden_irreps
from mlip.nn.radial import RadialSettings
from mlip.nn.segments import NeighbourSegments


def per_layer(value: int | list[int] | None, default: int, num_layers: int, name: str, least: int) -> list[int]:
    """One degree per layer from `value`: an int for every layer, a list of one per layer, or
    None (`default` everywhere); each between `least` and 3."""
    if value is not None and not isinstance(value, (int, list, tuple)):
        raise ValueError(f"{name} must be an integer or a list of one per layer, got {value!r}")
    values = [default] * num_layers if value is None else \
        [value] * num_layers if isinstance(value, int) else [int(v) for v in value]
    if len(values) != num_layers:
        raise ValueError(f"{name} needs one value per layer ({num_layers}), got {value}")
    if not all(least <= v <= 3 for v in values):
        raise ValueError(f"{name} must be between {least} and 3, got {value}")
    return values


class EquivariantNetwork(nn.Module):
    """Species embedding, `num_layers` interaction blocks, scalar readouts summed over layers.

    Node features are `channels` copies of every l ≤ `lmax` (0..3); edges carry spherical
    harmonics up to `sh_lmax` (default `lmax`; a list: one per layer) and radial functions per
    path and channel:
    `radial="spline"` (Facet-style cubic B-splines, default) or `"mlp"` (Bessel + MLP, whose
    polynomial envelope has exponent `envelope_exponent` and whose Bessel frequencies train with
    `trainable_basis`).
    The neighbour sum A entering the product basis keeps every l ≤ `a_lmax` (default `lmax`;
    MACE's recipe is a_lmax = sh_lmax = 3 with lmax = 1; a list gives one a_lmax per layer,
    e.g. [2, 3] for l = 3 only in the last layer's neighbour sum), and `species_product=True` makes
    the product basis' path weights element-dependent (as MACE's symmetric contraction);
    `product="gaunt"` computes the product basis on a sphere grid (`mlip.nn.gaunt`) instead of
    with channel-wise Clebsch-Gordan products. `dropout` > 0 zeroes each irrep of each atom's
    features between blocks with that probability while training (equivariant dropout, `IrrepDropout`; a
    regulariser for small training sets, off in evaluation, traced by torch.compile).

    Inputs are species indices and edge vectors only, so the energy is invariant to
    translations by construction and to rotations/reflections through e3nn's exact algebra.

    `edge_pairs` (`mlip.graph.edge_pairs.edge_pairs`, which the `Potential` passes): the radial
    weights of each bond are computed once for its two opposite edges (half the radial network's
    work, the same energy); without it, once per edge.

    Shapes: species (N,) int64 in [0, num_species), edge_vectors (E, 3) Å, receivers/senders (E,),
            edge_pairs (representative (P,), pair (E,)) int64 → per-atom energies (N,) in the network's
            units (the `Potential` scales them to eV).
    """

    accepts_edge_pairs = True

    def __init__(self, num_species: int, cutoff: float, channels: int = 32, lmax: int = 2,
                 sh_lmax: int | list[int] | None = None,
                 num_layers: int = 2, correlation: int = 3, radial: str = "spline", num_basis: int = 8,
                 radial_hidden: tuple[int, ...] = (64, 64), avg_num_neighbors: float = 10.0,
                 nonlinearity: str = "gate", readout_hidden: int = 16, a_lmax: int | list[int] | None = None,
                 species_product: bool = False, product: str = "tensor", envelope_exponent: int = 5,
                 trainable_basis: bool = False, dropout: float = 0.0):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if not 0 <= lmax <= 3:
            raise ValueError(f"lmax must be between 0 and 3, got {lmax}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        a_lmaxes = per_layer(a_lmax, lmax, num_layers, "a_lmax", least=lmax)
        sh_lmaxes = per_layer(sh_lmax, lmax, num_layers, "sh_lmax", least=0)
        self.num_species, self.cutoff = num_species, float(cutoff)
        self.sh_irreps = o3.Irreps.spherical_harmonics(max(sh_lmaxes))
        # a module, so that forward touches no Irreps object (torch.compile cannot guard on them)
        self.spherical_harmonics = o3.SphericalHarmonics(self.sh_irreps, normalize=True, normalization="component")
        scalars = o3.Irreps(f"{channels}x0e")
        self.embedding = FrozenDenseLinear(o3.Irreps(f"{num_species}x0e"), scalars)
        self.blocks = nn.ModuleList()
        self.readouts = nn.ModuleList()
        self.dropouts = nn.ModuleList()
        irreps = scalars
        radial_settings = RadialSettings(float(cutoff), radial, num_basis, tuple(radial_hidden), int(envelope_exponent),
                                         bool(trainable_basis))
        for layer in range(num_layers):
            last = layer == num_layers - 1
            irreps_out = scalars if last else hidden_irreps(channels, lmax)
            block = InteractionBlock(irreps, irreps_out, o3.Irreps.spherical_harmonics(sh_lmaxes[layer]), num_species,
                                     radial_settings, avg_num_neighbors, correlation, nonlinearity, a_lmaxes[layer],
                                     species_product, product)
            self.blocks.append(block)
            readout = (nn.Sequential(FrozenDenseLinear(irreps_out, o3.Irreps(f"{readout_hidden}x0e")), nn.SiLU(),
                                     FrozenDenseLinear(o3.Irreps(f"{readout_hidden}x0e"), o3.Irreps("0e")))
                       if last else FrozenDenseLinear(irreps_out, o3.Irreps("0e")))
            self.readouts.append(readout)
            # equivariant dropout between blocks: whole irreps (a channel's scalar, vector, ...) of an atom
            # are zeroed together, so every sample of the mask keeps the energy invariant; off in eval mode
            self.dropouts.append(IrrepDropout(irreps_out, dropout) if dropout > 0 and not last else nn.Identity())
            irreps = irreps_out
        # neighbour sums as per-atom matrix products (`NeighbourSegments`) where the layout pays; a
        # scatter sum otherwise and under torch.compile / torch.export. Not an option of the model:
        # both give the same sums (a switch for tests and timing)
        self.segment_sums = True

    def forward(self, species: torch.Tensor, edge_vectors: torch.Tensor, receivers: torch.Tensor,
                senders: torch.Tensor, edge_pairs: tuple[torch.Tensor, torch.Tensor] | None = None,
                segment_layout: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        onehot = nn.functional.one_hot(species, self.num_species).to(edge_vectors.dtype)
        pair = None
        if edge_pairs is not None:  # one length per bond: the radial networks run once per bond
            representative, pair = edge_pairs
            lengths = torch.linalg.vector_norm(edge_vectors.index_select(0, representative), dim=-1)
        else:
            lengths = torch.linalg.vector_norm(edge_vectors, dim=-1)
        edge_sh = self.spherical_harmonics(edge_vectors)
        node_feats = self.embedding(onehot)
        if segment_layout is not None:  # built before a compiled call (`NeighbourSegments.compiled_layout`)
            segments = NeighbourSegments.from_compiled_layout(segment_layout, species.shape[0])
        else:
            segments = NeighbourSegments.build(receivers, species.shape[0]) if self.segment_sums else None
        if segments is not None:  # the convolutions' per-edge inputs laid out per receiver once, for every layer
            edge_sh, senders = segments.pad(edge_sh, 0), segments.pad(senders, 0)
        energy = torch.zeros(species.shape[0], dtype=edge_vectors.dtype, device=edge_vectors.device)
        for block, readout, dropout in zip(self.blocks, self.readouts, self.dropouts):
            node_feats = dropout(block(node_feats, onehot, edge_sh, lengths, receivers, senders, segments, pair))
            energy = energy + readout(node_feats).squeeze(-1)
        return energy
