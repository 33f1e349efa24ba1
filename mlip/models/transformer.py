"""`TransformerNetwork`: a plain transformer over atoms (no equivariant layers) → per-atom energies.

Atoms are tokens. Two ways to see geometry (`attention`):

- "neighbor" (default; molecules and periodic cells): element embedding + a geometric embedding
  of the raw relative vectors to the neighbours; attention runs over the neighbour graph only
  (`NeighborAttention`), each edge's features (an MLP of its direction and a spline radial basis
  of its length) giving the attention bias and edge values. Cost linear in atoms. With
  `attention_weights="silu"` the weights are unnormalised SiLU(logit)·envelope/n̄ (TorchMD-Net's
  equivariant transformer), so the sums keep the neighbour count a softmax averages away.
- "edge" (EScAIP-style, Qu & Krishnapriyan 2024; molecules and periodic cells): the tokens are the
  edges, laid out per atom (`NeighbourSegments`), and the edges of each atom attend to each other and
  to the atom (`EdgeTokenBlock`), so every layer sees angles between an atom's bonds; the atoms are
  updated from the envelope-weighted sums of their edges. Cost linear in atoms, quadratic in the
  neighbour count.
- "molecule" (TransIP, Elhag et al. 2025; molecules only): positions centred on the centroid,
  rotary encodings of the 3-D positions in every layer's queries and keys, attention over all
  atoms of the molecule with no cutoff (`MoleculeAttention`), plus a learned bias of the pair
  distance. Cost quadratic in the atoms of a molecule (`max_atoms` caps it).

With `environment_lmax` L ≥ 1 (neighbour mode) every token also starts from an invariant
summary of its neighbourhood: learned radial channels R_k(r) summed with the edge directions'
harmonics, A_k,lm = Σ_j R_k(r_ij) Y_lm(r̂_ij), reduced to the power spectrum Σ_m A_k,lm²
(l = 1..L) beside A_k,00 (`mlip.nn.environment.NeighbourhoodInvariants`): three-body angular
information that the raw-vector embedding otherwise has to learn, exactly rotation invariant, at the
cost of one neighbour sum. With `environment_species` the channels also see the neighbour's element,
A_k,lm = Σ_j R_k(r_ij) S_k(Z_j) Y_lm(r̂_ij) (the equivariant network's first neighbour sum), and the
invariants mix channels, Σ_m A_k,lm (M_l A)_k,lm. With `environment_blocks` every block starts with
such a sub-layer whose channel weights are a linear map of the neighbours' current tokens
(`EnvironmentSublayer`), so every layer sees three-body information of its features.

Neither is rotation invariant by construction: the network learns it (rotation augmentation or
the embedding-space symmetry objective, `mlip.train.symmetry`), or `frames="O3"|"SO3"` makes it
exact by frame averaging over the principal axes of each structure (`mlip.nn.frames`); with
`frame_sampling="random"` training sees one random frame per structure and step, evaluation all.
Translation and permutation invariance are exact; supercell consistency too in "neighbor" mode
without frames (the only mode for periodic cells).
"""

from __future__ import annotations

import torch
from torch import nn

from mlip.nn.attention import MoleculeAttention, NeighborAttention
from mlip.nn.cutoff import PolynomialEnvelope
from mlip.nn.edge_attention import EdgeTokenBlock
from mlip.nn.environment import EnvironmentSublayer, NeighbourhoodInvariants
from mlip.nn.frames import PrincipalFrames
from mlip.nn.radial import BSplineBasis
from mlip.nn.segments import NeighbourSegments


# neighbour attention over per-atom slots (dense reductions) from this degree bucket up; scatter sums below it
SLOT_ATTENTION_MIN_DEGREE = 32


class TransformerBlock(nn.Module):
    """Pre-norm block: x + Attention(LN(x), ...), then x + MLP(LN(x)); with an `environment`
    sub-layer (`EnvironmentSublayer`) first, fed `environment_inputs`."""

    def __init__(self, dim: int, attention: nn.Module, mlp_ratio: int = 2, environment: nn.Module | None = None):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = attention
        self.environment = environment
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.SiLU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x: torch.Tensor, *geometry: torch.Tensor,
                environment_inputs: tuple[torch.Tensor, ...] = ()) -> torch.Tensor:
        if self.environment is not None:
            x = self.environment(x, *environment_inputs)
        x = x + self.attention(self.norm1(x), *geometry)
        return x + self.mlp(self.norm2(x))


class GaussianDistanceBasis(nn.Module):
    """exp(−((r − μ_k)/σ)²) on K centres evenly spaced over [0, `max_distance`] Å. Shapes: (...) → (..., K)."""

    def __init__(self, num_basis: int, max_distance: float):
        super().__init__()
        self.register_buffer("centres", torch.linspace(0.0, max_distance, num_basis), persistent=False)
        self.width = max_distance / max(num_basis - 1, 1)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return torch.exp(-((r.unsqueeze(-1) - self.centres.to(r.dtype)) / self.width).square())


class EdgeDirections(nn.Module):
    """Features of an edge's direction: the unit vector (lmax 1) or real spherical harmonics
    Y_lm(r̂) for 1 ≤ l ≤ lmax (component normalisation; l = 0 is a constant and left out).
    Shapes: vectors (E, 3) Å, lengths (E,) Å → (E, dim), dim = (lmax + 1)² − 1."""

    def __init__(self, lmax: int):
        super().__init__()
        self.lmax, self.dim = int(lmax), (int(lmax) + 1) ** 2 - 1
        if self.lmax > 1:
            from e3nn import o3

            self.harmonics = o3.SphericalHarmonics(o3.Irreps.spherical_harmonics(self.lmax, p=-1)[1:],
                                                   normalize=True, normalization="component")

    def forward(self, vectors: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.lmax == 1:
            return vectors / lengths.clamp_min(1e-9).unsqueeze(-1)
        return self.harmonics(vectors)


class TransformerNetwork(nn.Module):
    """Shapes: species (N,), edge_vectors (E, 3) Å, receivers/senders (E,), and with
    `positions` (N, 3) Å, `batch` (N,), `num_graphs`, `periodic` (B,) bool from the `Potential`
    (when `uses_structure`) → per-atom energies (N,).

    `embedding(...)` returns the per-atom token embeddings before the readout (N, dim), the
    space where a learned-equivariance objective acts (not with frame averaging, which needs none).
    """

    def __init__(self, num_species: int, cutoff: float, dim: int = 64, heads: int = 4, num_layers: int = 3,
                 num_basis: int = 8, avg_num_neighbors: float = 10.0, attention: str = "neighbor",
                 max_atoms: int = 256, distance_basis: int = 16, max_distance: float = 10.0,
                 frames: str | None = None, frame_sampling: str = "all", frame_tolerance: float = 0.05,
                 plane_samples: int = 4, geometry_lmax: int = 1, geometry_product: bool = False,
                 edge_filter: bool = False, environment_lmax: int = 0, environment_species: bool = False,
                 environment_blocks: bool = False, edge_dim: int | None = None, attention_weights: str = "softmax"):
        super().__init__()
        if attention not in ("neighbor", "edge", "molecule"):
            raise ValueError(f"attention must be 'neighbor', 'edge' or 'molecule', got '{attention}'")
        if attention_weights != "softmax" and attention != "neighbor":
            raise ValueError("attention_weights is an option of attention='neighbor'")
        if frame_sampling not in ("all", "random"):
            raise ValueError(f"frame_sampling must be 'all' or 'random', got '{frame_sampling}'")
        self.cutoff, self.avg_num_neighbors, self.embedding_dim = float(cutoff), float(avg_num_neighbors), dim
        self.attention_kind, self.max_atoms, self.frame_sampling = attention, int(max_atoms), frame_sampling
        self.frames = None if frames in (None, "none") else PrincipalFrames(frames, frame_tolerance, plane_samples)
        self.species_embedding = nn.Embedding(num_species, dim)
        if geometry_lmax < 1:
            raise ValueError(f"geometry_lmax must be at least 1 (the unit vector), got {geometry_lmax}")
        # edge tokens need every atom's edges in one padded row (also under torch.compile: see `segment_sums`);
        # neighbour attention takes it where it pays (its sums then need no scatter)
        self.segment_sums, self.segment_layout_required = attention in ("neighbor", "edge"), attention == "edge"
        # compiled training (`CompiledForces`) passes the layout only where it is required: neighbour attention's
        # slot path made a compiled training step slower (5 Cu 32 cells 45.2 against 40.7 ms, 5 aspirins 15.7
        # against 9.3; 2026-12-08), though it makes compiled inference faster
        self.segment_sums_in_training = self.segment_layout_required
        self.edge_dim = int(edge_dim or dim)
        if attention in ("neighbor", "edge"):
            self.basis = BSplineBasis(cutoff, num_basis)
            self.envelope = PolynomialEnvelope(cutoff)
            self.directions = EdgeDirections(geometry_lmax)
            # Geometric embedding of the relative vectors: (direction features, radial basis) → dim,
            # with their outer product as input when geometry_product (every (l m, n) pair).
            self.geometry_product = bool(geometry_product)
            angular = self.directions.dim
            inputs = angular * num_basis + num_basis if self.geometry_product else angular + num_basis
            geometry_dim = self.edge_dim if attention == "edge" else dim
            self.geometry = nn.Sequential(nn.Linear(inputs, dim), nn.SiLU(), nn.Linear(dim, geometry_dim))
            def attention_layer() -> nn.Module:
                return NeighborAttention(dim, heads, dim, edge_filter, attention_weights, avg_num_neighbors)
            self.environment_lmax = int(environment_lmax)
            if not 0 <= self.environment_lmax <= 3:
                raise ValueError(f"environment_lmax must be 0 (off) to 3, got {environment_lmax}")
            if (environment_species or environment_blocks) and not self.environment_lmax:
                raise ValueError("environment_species and environment_blocks need environment_lmax >= 1")
            self.environment_species, self.environment_blocks = bool(environment_species), bool(environment_blocks)
            channels = max(dim // 2, 1)
            if self.environment_lmax:
                self.environment_directions = EdgeDirections(self.environment_lmax)
                self.environment_invariants = NeighbourhoodInvariants(num_basis, channels, self.environment_lmax,
                                                                      avg_num_neighbors, self.environment_species)
                if self.environment_species:
                    self.environment_elements = nn.Embedding(num_species, channels)
                    nn.init.ones_(self.environment_elements.weight)
                self.environment = nn.Sequential(nn.Linear(self.environment_invariants.dim, dim), nn.SiLU(),
                                                 nn.Linear(dim, dim))
            def environment_layer() -> nn.Module | None:
                if not self.environment_blocks:
                    return None
                return EnvironmentSublayer(dim, num_basis, channels, self.environment_lmax, avg_num_neighbors)
        else:
            if environment_lmax or environment_species or environment_blocks:
                raise ValueError("environment_lmax needs attention='neighbor' (molecule attention has no neighbour graph)")
            self.environment_lmax = 0
            def environment_layer() -> nn.Module | None:
                return None
            self.distances = GaussianDistanceBasis(distance_basis, max_distance)
            def attention_layer() -> nn.Module:
                return MoleculeAttention(dim, heads, distance_basis)
        if attention == "edge":
            if environment_lmax or edge_filter:
                raise ValueError("environment_lmax and edge_filter are options of attention='neighbor'")
            self.blocks = nn.ModuleList(EdgeTokenBlock(dim, self.edge_dim, heads, avg_num_neighbors)
                                        for _ in range(num_layers))
        else:
            self.blocks = nn.ModuleList(TransformerBlock(dim, attention_layer(), environment=environment_layer())
                                        for _ in range(num_layers))
        self.readout = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, 1))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # model files written before 2026-12-08 name the invariants' radial map `environment_radial`
        former = prefix + "environment_radial.weight"
        if former in state_dict:
            state_dict[prefix + "environment_invariants.radial.weight"] = state_dict.pop(former)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ----- the backbone on one set of coordinates ----------------------------------------------
    def _tokens(self, species, edge_vectors, receivers, senders, positions, batch, num_graphs,
                segment_layout=None) -> torch.Tensor:
        x = self.species_embedding(species)
        if self.attention_kind == "edge":
            return self._edge_tokens(x, edge_vectors, receivers, senders, segment_layout)
        if self.attention_kind == "neighbor":
            lengths = torch.linalg.vector_norm(edge_vectors, dim=-1)
            envelope = self.envelope(lengths)
            angular, radial = self.directions(edge_vectors, lengths), self.basis(lengths)
            if self.geometry_product:
                angular = (angular.unsqueeze(-1) * radial.unsqueeze(-2)).flatten(1)
            edge_features = self.geometry(torch.cat([angular, radial], dim=-1))  # (E, dim)
            environment_inputs: tuple[torch.Tensor, ...] = ()
            if self.environment_lmax:
                directions = self.environment_directions(edge_vectors, lengths)
                harmonics = torch.cat([torch.ones_like(directions[:, :1]), directions], dim=-1)   # (E, (L+1)²)
                enveloped = radial * envelope.unsqueeze(-1)
                elements = (self.environment_elements(species).index_select(0, senders)
                            if self.environment_species else None)
                x = x + self.environment(self.environment_invariants(enveloped, harmonics, receivers, x.shape[0],
                                                                     elements))
                if self.environment_blocks:
                    environment_inputs = (enveloped, harmonics, receivers, senders)
            segments = self._segments(x.shape[0], segment_layout)
            if segments is None:
                x = x + torch.zeros_like(x).index_add_(0, receivers, edge_features * envelope.unsqueeze(-1)) / self.avg_num_neighbors
                for block in self.blocks:
                    x = block(x, edge_features, envelope, receivers, senders, environment_inputs=environment_inputs)
                return x
            # every atom's edges in one row of slots: the sums over neighbours are dense reductions
            filled = segments.pad(torch.ones_like(envelope, dtype=torch.bool), 0)
            edge_features, envelope = segments.pad(edge_features, 0), segments.pad(envelope, 0)
            padded_senders = segments.pad(senders, 0)
            weighted = (edge_features * envelope.unsqueeze(-1)).view(x.shape[0], segments.degree, -1)
            x = x + weighted.sum(1) / self.avg_num_neighbors
            for block in self.blocks:
                x = block(x, edge_features, envelope, receivers, padded_senders, segments, filled,
                          environment_inputs=environment_inputs)
            return x
        counts = torch.bincount(batch, minlength=num_graphs)
        slot = torch.arange(batch.shape[0], device=batch.device) - (torch.cumsum(counts, 0) - counts).index_select(0, batch)
        width = int(counts.max())
        padded = x.new_zeros(num_graphs, width, x.shape[1]).index_put((batch, slot), x)
        coordinates = positions.new_zeros(num_graphs, width, 3).index_put((batch, slot), positions)
        mask = torch.zeros(num_graphs, width, dtype=torch.bool, device=x.device).index_put((batch, slot),
                                                                                       torch.ones_like(batch, dtype=torch.bool))
        differences = coordinates.unsqueeze(2) - coordinates.unsqueeze(1)
        pair_distances = torch.sqrt(differences.square().sum(-1) + 1e-12)   # smooth at r = 0 (the diagonal)
        basis = self.distances(pair_distances)
        for block in self.blocks:
            padded = block(padded, coordinates, basis, mask)
        return padded[batch, slot]

    @staticmethod
    def _segments(num_atoms: int, segment_layout: tuple[torch.Tensor, torch.Tensor] | None) -> NeighbourSegments | None:
        """The per-receiver slot layout of a compiled inference call (built by the compiled wrapper; compiled
        training passes none: `segment_sums_in_training`) where atoms have many neighbours (degree bucket ≥
        `SLOT_ATTENTION_MIN_DEGREE`), else None: the scatter sums. Measured 2026-12-08 (float32, two threads),
        compiled: Si 512 (bucket 32) 29 against 40 ms, Si 64 7.0 against 7.4; aspirin (bucket 24) 3.2–3.4
        against 2.9 ms. Eagerly the scatter sums are as fast or faster."""
        if segment_layout is None:
            return None
        segments = NeighbourSegments.from_compiled_layout(segment_layout, num_atoms)
        return segments if segments.degree >= SLOT_ATTENTION_MIN_DEGREE else None

    def _edge_tokens(self, x: torch.Tensor, edge_vectors: torch.Tensor, receivers: torch.Tensor,
                     senders: torch.Tensor, segment_layout: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        """Atom tokens after the edge-token blocks (`EdgeTokenBlock`): every edge starts from its geometric
        embedding, laid out per receiving atom. x (N, dim) element embeddings → (N, dim)."""
        if segment_layout is not None:  # built before a compiled call (`NeighbourSegments.compiled_layout`)
            segments = NeighbourSegments.from_compiled_layout(segment_layout, x.shape[0])
        elif torch.compiler.is_compiling() or getattr(torch.compiler, "is_exporting", lambda: False)():
            raise ValueError("attention='edge' under torch.compile needs the neighbour layout as an input "
                             "(mlip's compiled wrappers pass it; torch.export programs cannot build it)")
        else:
            segments = NeighbourSegments(receivers, x.shape[0])
        lengths = torch.linalg.vector_norm(edge_vectors, dim=-1)
        envelope = self.envelope(lengths)
        edge_features = self.geometry(torch.cat([self.directions(edge_vectors, lengths), self.basis(lengths)], dim=-1))
        tokens, envelope = segments.pad(edge_features, 0), segments.pad(envelope, 0)
        padded_senders = segments.pad(senders, 0)
        for block in self.blocks:
            x, tokens = block(x, tokens, envelope, padded_senders, segments.degree)
        return x

    @property
    def uses_structure(self) -> bool:
        """Whether the `Potential` must pass whole-structure inputs (positions, batch, periodicity):
        molecule attention and frame averaging; the plain neighbour transformer needs edges only
        (and so stays exportable with `export_energy_program`)."""
        return self.attention_kind == "molecule" or self.frames is not None

    @property
    def rotation_invariant(self) -> bool:
        """Exactly rotation invariant by construction: only with frame averaging."""
        return self.frames is not None

    def _check(self, positions, batch, num_graphs, periodic) -> None:
        if positions is None:
            raise ValueError("this transformer needs the structure's positions (call it through mlip's Potential)")
        if self.attention_kind == "molecule" or self.frames is not None:
            if periodic is not None and bool(periodic.any()):
                raise ValueError("molecule attention and frame averaging are for molecules: this batch holds a "
                                 "periodic cell; use the transformer with attention='neighbor' and no frames")
        if self.attention_kind == "molecule":
            largest = int(torch.bincount(batch, minlength=num_graphs).max())
            if largest > self.max_atoms:
                raise ValueError(f"a structure has {largest} atoms, more than molecule attention's max_atoms "
                                 f"{self.max_atoms} (cost grows with the square); use attention='neighbor'")

    def embedding(self, species: torch.Tensor, edge_vectors: torch.Tensor, receivers: torch.Tensor,
                  senders: torch.Tensor, positions: torch.Tensor | None = None, batch: torch.Tensor | None = None,
                  num_graphs: int = 1, periodic: torch.Tensor | None = None,
                  segment_layout: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Per-atom token embeddings (N, dim) before the readout."""
        if self.frames is not None:
            raise ValueError("frame averaging makes the energy exactly invariant: there is no embedding for a "
                             "symmetry objective to act on (use frames=None with symmetry_weight)")
        if batch is None:
            batch = torch.zeros_like(species)
        if self.attention_kind == "molecule":
            self._check(positions, batch, num_graphs, periodic)
            counts = torch.bincount(batch, minlength=num_graphs).clamp_min(1).to(positions.dtype)
            centres = positions.new_zeros(num_graphs, 3).index_add(0, batch, positions) / counts[:, None]
            positions = positions - centres.index_select(0, batch)
        return self._tokens(species, edge_vectors, receivers, senders, positions, batch, num_graphs, segment_layout)

    def head(self, embedding: torch.Tensor) -> torch.Tensor:
        """Per-atom energies (N,) from the token embeddings (N, dim)."""
        return self.readout(embedding).squeeze(-1)

    def forward(self, species: torch.Tensor, edge_vectors: torch.Tensor, receivers: torch.Tensor,
                senders: torch.Tensor, positions: torch.Tensor | None = None, batch: torch.Tensor | None = None,
                num_graphs: int = 1, periodic: torch.Tensor | None = None,
                segment_layout: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        if self.frames is None:
            return self.head(self.embedding(species, edge_vectors, receivers, senders, positions, batch, num_graphs,
                                            periodic, segment_layout))
        self._check(positions, batch, num_graphs, periodic)
        return self._frame_average(species, edge_vectors, receivers, senders, positions, batch, num_graphs)

    # ----- frame averaging -------------------------------------------------------------------------
    def _frame_average(self, species, edge_vectors, receivers, senders, positions, batch, num_graphs) -> torch.Tensor:
        """Σ_f w_f · backbone(coordinates in frame f), per atom; every frame is its own copy of its structure."""
        centred, frames, owner, weights = self.frames(positions, batch, num_graphs)
        if self.training and self.frame_sampling == "random":
            owner, frames, weights = _one_frame_each(owner, frames, weights, num_graphs)
        atom_counts = torch.bincount(batch, minlength=num_graphs)
        atom_starts = torch.cumsum(atom_counts, 0) - atom_counts
        # atoms of every copy: original index, copy index
        copy_of_atom, atom = _ranges(atom_starts.index_select(0, owner), atom_counts.index_select(0, owner))
        copy_start = torch.cumsum(atom_counts.index_select(0, owner), 0) - atom_counts.index_select(0, owner)
        edge_structure = batch.index_select(0, receivers)
        order = torch.argsort(edge_structure, stable=True)
        edge_counts = torch.bincount(edge_structure, minlength=num_graphs)
        edge_starts = torch.cumsum(edge_counts, 0) - edge_counts
        copy_of_edge, position = _ranges(edge_starts.index_select(0, owner), edge_counts.index_select(0, owner))
        edge = order.index_select(0, position)
        shift = (copy_start - atom_starts.index_select(0, owner)).index_select(0, copy_of_edge)
        frame_of_edge = frames.index_select(0, copy_of_edge)
        vectors = torch.einsum("ec,ecd->ed", edge_vectors.index_select(0, edge), frame_of_edge)
        coordinates = torch.einsum("nc,ncd->nd", centred.index_select(0, atom), frames.index_select(0, copy_of_atom))
        tokens = self._tokens(species.index_select(0, atom), vectors, receivers.index_select(0, edge) + shift,
                              senders.index_select(0, edge) + shift, coordinates, copy_of_atom, owner.shape[0])
        energies = self.head(tokens) * weights.index_select(0, copy_of_atom)
        return energies.new_zeros(species.shape[0]).index_add(0, atom, energies)


def _ranges(starts: torch.Tensor, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenated ranges [start, start + count) and, for each element, which range it came from."""
    which = torch.repeat_interleave(torch.arange(starts.shape[0], device=starts.device), counts)
    offsets = torch.cumsum(counts, 0) - counts
    return which, starts.index_select(0, which) + torch.arange(which.shape[0], device=starts.device) - offsets.index_select(0, which)


def _one_frame_each(owner: torch.Tensor, frames: torch.Tensor, weights: torch.Tensor, num_graphs: int):
    """One frame per structure, drawn with probability ∝ its weight (exponential race on torch's
    generator: argmax of log(u) / w); the chosen frame's weight becomes 1."""
    keys = torch.rand_like(weights).clamp_min(1e-30).log() / weights
    best = keys.new_full((num_graphs,), float("-inf")).scatter_reduce(0, owner, keys, reduce="amax")
    chosen = torch.nonzero(keys == best.index_select(0, owner)).squeeze(-1)  # ties have probability 0
    return owner.index_select(0, chosen), frames.index_select(0, chosen), torch.ones_like(weights.index_select(0, chosen))
