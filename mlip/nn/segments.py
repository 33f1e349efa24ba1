"""Neighbour sums as batched matrix products: edges laid out per receiving atom, padded to the largest degree."""

from __future__ import annotations

import torch

# padded slots allowed per edge before the padded layout is refused (the scatter sum is used instead):
# bounds the memory of the padded tensors when one atom has far more neighbours than the rest
MAX_PADDING = 2.0
# under torch.compile the degree is rounded up to a multiple of this and compiled as a constant:
# one graph per bucket (a diamond Si cell at 5 Å, 28 neighbours, and a liquid with 30-38 share few)
COMPILED_DEGREE_STEP = 8


class NeighbourSegments:
    """The edges of every receiving atom as one row of `degree` slots (zeros where an atom has fewer).

    A neighbour sum Σ_{e→i} K[e] ⊗ G[e] of per-edge factors then becomes one batched matrix product
    per atom, (width, D·d) @ (D·d, C), instead of a per-edge (E, width, C) tensor summed by a scatter:
    the per-edge outer products are never stored, which is most of the memory traffic of a
    convolution. Built once per forward pass from the receivers and shared by every layer; the
    per-edge inputs (harmonics, senders, radial weights) are laid out once (`pad`) and every
    product then computed in that layout, so no per-edge product is copied into it.

    `slots` (E,): the padded position receiver·D + rank of each edge among its receiver's edges (in
    edge order). `identity`: the edges already are that layout (grouped by receiver, every atom with
    D neighbours: a crystal of one site type, as the graph builder orders its pairs), so laying them
    out is a reshape, not a copy. Shapes: receivers (E,) int64 in [0, num_nodes).
    """

    def __init__(self, receivers: torch.Tensor, num_nodes: int, degree_step: int = 1, min_degree: int = 1):
        n_edges = receivers.shape[0]
        counts = torch.bincount(receivers, minlength=num_nodes)
        self.num_nodes = int(num_nodes)
        degree = max(int(counts.max()), min_degree, 1) if n_edges else 1
        self.degree = -(-degree // degree_step) * degree_step
        order = torch.argsort(receivers, stable=True)
        starts = torch.cumsum(counts, 0) - counts
        ranked = receivers.index_select(0, order)
        slots = torch.empty_like(receivers)
        slots[order] = ranked * self.degree + torch.arange(n_edges, device=receivers.device) - starts.index_select(0, ranked)
        self.slots = slots
        self.identity = n_edges == self.num_nodes * self.degree and bool(
            torch.equal(slots, torch.arange(n_edges, device=receivers.device)))

    @classmethod
    def build(cls, receivers: torch.Tensor, num_nodes: int) -> "NeighbourSegments | None":
        """The layout, or None where it does not pay or cannot be used: padding over `MAX_PADDING`
        slots per edge, no edges, or while torch.compile / torch.export trace (the degree is data).
        Building it outside a compiled graph (a graph break, the degree a guarded input) was tried on
        2026-12-06: faster, but Inductor then baked one degree into a stride and the third structure of
        another neighbour count failed its stride check, so compiled networks take the scatter sum."""
        exporting = getattr(torch.compiler, "is_exporting", lambda: False)()  # torch >= 2.5
        if receivers.shape[0] == 0 or torch.compiler.is_compiling() or exporting:
            return None
        return cls._if_it_pays(receivers, num_nodes)

    @classmethod
    def _if_it_pays(cls, receivers: torch.Tensor, num_nodes: int, degree_step: int = 1,
                    min_degree: int = 1) -> "NeighbourSegments | None":
        segments = cls(receivers, num_nodes, degree_step, min_degree)
        if segments.num_nodes * segments.degree > MAX_PADDING * receivers.shape[0] + segments.num_nodes:
            return None
        return segments

    @classmethod
    def compiled_layout(cls, receivers: torch.Tensor, num_nodes: int, min_degree: int = 1,
                        always: bool = False) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The layout as graph inputs for a torch.compile'd network, built eagerly before the call:
        (slots (E,) int64, degree marker (D,)), or None where it does not pay. The degree is rounded
        up to a multiple of `COMPILED_DEGREE_STEP` (and raised to `min_degree` where that still pays)
        and the marker's one dimension is marked static, so each degree bucket gets its own graph in
        which D is a constant (`from_compiled_layout`); atom and edge counts stay dynamic. A symbolic
        degree is what failed on 2026-12-06 (Inductor baked one degree into a stride, and a structure
        of another neighbour count crashed). `always`: build it whatever the padding (for networks that need
        it, e.g. the transformer's edge tokens), and for a structure without edges too."""
        if receivers.shape[0] == 0 and not always:
            return None
        segments = cls._if_it_pays(receivers, num_nodes, COMPILED_DEGREE_STEP, min_degree)
        if segments is None and min_degree > 1:
            segments = cls._if_it_pays(receivers, num_nodes, COMPILED_DEGREE_STEP)
        if segments is None and always:
            segments = cls(receivers, num_nodes, COMPILED_DEGREE_STEP, min_degree)
        if segments is None:
            return None
        marker = receivers.new_empty(segments.degree, dtype=torch.uint8)
        torch._dynamo.mark_static(marker, 0)
        return segments.slots, marker

    @classmethod
    def from_compiled_layout(cls, layout: tuple[torch.Tensor, torch.Tensor], num_nodes: int) -> "NeighbourSegments":
        """The layout inside a compiled graph, from `compiled_layout`'s tensors (no data read)."""
        segments = cls.__new__(cls)
        segments.slots, marker = layout
        segments.num_nodes, segments.degree, segments.identity = num_nodes, marker.shape[0], False
        return segments

    def pad(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        """x with its edge axis `dim` (size E) spread to num_nodes·degree slots, zeros in the padding."""
        if self.identity:
            return x
        shape = list(x.shape)
        shape[dim] = self.num_nodes * self.degree
        return x.new_zeros(shape).index_copy(dim, self.slots, x)

    def neighbour_sum(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """Σ_{e→i} Σ_k left[p, e, k, w] right[p, e, k, c] for every receiver i and batch entry p, with
        both factors already in the slot layout (`pad`; padding slots must hold zeros in one of them).

        left (P, N·D, k, W), right (P, N·D, k, C) → (P, N, W, C).
        """
        p, _, k, width = left.shape
        channels = right.shape[-1]
        left = left.reshape(p * self.num_nodes, self.degree * k, width)
        right = right.reshape(p * self.num_nodes, self.degree * k, channels)
        return torch.bmm(left.transpose(1, 2), right).reshape(p, self.num_nodes, width, channels)

    def fused_neighbour_sum(self, left: torch.Tensor, weight: torch.Tensor, component: torch.Tensor) -> torch.Tensor:
        """`neighbour_sum(left, weight ⊙ component)` written as one broadcast product summed over the slots and k,
        for torch.compile: Inductor fuses the products into the reduction (and its gradients into theirs), so
        the (P, N·D, k, C) factor and its gradient are never stored. Eagerly it would store a larger tensor than
        the matrix product does; compiled, a whole energy + forces call of the medium model is 12–14 % faster with
        it than with the matrix product (Si 512 and 4,096 atoms; benchmarks/README.md "The compiled neighbour sum as
        one fused reduction").

        left (P, N·D, k, W), weight (P, N·D, C), component (N·D, k, C) → (P, N, W, C).
        """
        p, _, k, width = left.shape
        channels = weight.shape[-1]
        n, d = self.num_nodes, self.degree
        terms = left.reshape(p, n, d, k, width, 1) * (weight.reshape(p, n, d, 1, 1, channels)
                                                      * component.reshape(1, n, d, k, 1, channels))
        return terms.sum(dim=(2, 3))



class GrowingCompiledLayout:
    """`NeighbourSegments.compiled_layout` for a stream of batches, its degree never below the largest
    seen so far: a graph compiled for degree D then serves every later batch whose neighbours fit,
    so training on a mix of surfaces (degree bucket 32) and bulk cells (40) compiles once, not once
    per bucket (a cold Inductor compile of the medium model's training graph takes ~4 minutes on one
    core). Costs a little padding in the batches of smaller degree.

    `always`: a layout for every batch, however much padding (`NeighbourSegments.compiled_layout`).

    Call: (receivers (E,) int64, num_nodes) → (slots (E,), degree marker (D,)) or None.
    """

    def __init__(self, always: bool = False):
        self.degree, self.always = 1, bool(always)

    def __call__(self, receivers: torch.Tensor, num_nodes: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        layout = NeighbourSegments.compiled_layout(receivers, num_nodes, self.degree, self.always)
        if layout is not None:
            self.degree = max(self.degree, layout[1].shape[0])
        return layout
