"""Equivariant convolution: messages r → tensor-product weights, summed over neighbours."""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

from mlip.nn import tabulated_convolution as fused
from mlip.nn.gather import gather_rows
from mlip.nn.irreps import coupling_paths, coupling_tensor, path_groups, to_channel_layout
from mlip.nn.radial import RadialSettings, tabulated
from mlip.nn.radial_table import TabulatedRadial
from mlip.nn.segments import NeighbourSegments


class EquivariantConvolution(nn.Module):
    """m_i = (1/n̄) Σ_j Σ_paths R_p,c(r_ij) [h_j,c ⊗ Y(r̂_ij)]_p, one path per (l_in, l_sh → l_out).

    A channel-wise ("uvu") tensor product of sender features (C copies of every l ≤ lmax_in,
    natural parity) with the edge's spherical harmonics (l ≤ lmax_sh) to every l_out ≤
    `lmax`, each path and channel weighted by its own radial function R (spline or
    Bessel+MLP). n̄ is the mean neighbour count of the training set.

    Fused for speed: the Clebsch-Gordan coefficients of the paths sharing an output l3 form
    one dense block, so per edge and l3 there is one small matmul with the harmonics, one
    batched product with the features and one broadcast with the radial weights. Edge tensors
    are stored (E, 2l3+1, paths, C): every operand of the batched product is contiguous, the
    radial weights (E, 1, paths, C) broadcast over the outermost axis only, and the neighbour
    sums come back in the layout `PathLinear` reads without a copy, so the backward pass's
    gathers read contiguous rows (2× faster per edge tensor than channel-major with paths
    outermost, measured at 14,336 edges). Exact, as e3nn's `TensorProduct`. Every path stays
    its own copy, for `PathLinear` to mix (`groups_to_block_layout` gives e3nn block layout,
    `irreps_out`).

    With `segments` (`NeighbourSegments`, edges laid out per receiver) the neighbour sum is a
    batched matrix product per atom instead: A_i = Σ_{e→i} Σ_d K[e, ·, d] (R[e] ⊙ h_j[d]), K the
    edge's coupling block, so the per-edge (E, 2l3+1, paths, C) messages are never stored or
    scattered (the same sum, summed in another order).

    In compiled float32 CPU inference with a tabulated radial (`compile_potential`), the neighbour sums run as one
    hand-fused C kernel per layer (`mlip.nn.tabulated_convolution`, `fused_kernel`): same sums, same derivatives.

    With `pair` (`mlip.graph.edge_pairs`: the bond of every edge), `lengths` holds one length per
    bond (P,) and the radial weights are computed once per bond and read by both of its edges.

    Shapes: node_feats (N, irreps_in.dim), edge_sh (E, ≥ sh.dim: higher l beyond sh_irreps are unused), lengths (E,)
            Å, or (P,) with pair (E,) int64 → one (N, C, paths, 2l3+1) tensor per l3 = 0, 1, ... (`paths_per_l`).
            With `segments`, edge_sh and senders come in its slot layout (N·D rows, `NeighbourSegments.pad`),
            lengths and pair as above.
    """

    def __init__(self, irreps_in: o3.Irreps, sh_irreps: o3.Irreps, lmax: int, radial: RadialSettings,
                 avg_num_neighbors: float = 10.0):
        super().__init__()
        irreps_in = o3.Irreps(irreps_in)
        self.channels = irreps_in[0].mul
        self.lmax_in = max(ir.l for _, ir in irreps_in)
        lmax_sh = max(ir.l for _, ir in o3.Irreps(sh_irreps))
        if [(m, ir.l, ir.p) for m, ir in irreps_in] != [(self.channels, l, (-1) ** l) for l in range(self.lmax_in + 1)]:
            raise ValueError(f"convolution input must be C copies of every l ≤ lmax of natural parity, got {irreps_in}")
        paths = coupling_paths(self.lmax_in, lmax_sh, lmax)  # sorted by l3
        coupling, _ = coupling_tensor(paths, self.lmax_in, lmax_sh)  # (dim_in, dim_sh, n_out)
        dim_in, dim_sh, n_out = coupling.shape
        self.groups = path_groups(paths)
        # one (dim_sh, [2l3+1, paths, dim_in]) block per group, side by side: edge_sh @ coupling → couplings
        blocks = coupling.permute(1, 0, 2).split([n * (2 * l3 + 1) for l3, _, n, _ in self.groups], dim=2)
        blocks = [b.reshape(dim_sh, dim_in, n, 2 * l3 + 1).permute(0, 3, 2, 1).reshape(dim_sh, -1)
                  for b, (l3, _, n, _) in zip(blocks, self.groups)]
        self.register_buffer("coupling_by_l3", torch.cat(blocks, dim=1).to(torch.get_default_dtype()),
                             persistent=False)  # follows from the config
        self.dim_in, self.dim_sh, self.paths = dim_in, dim_sh, paths
        self.irreps_out = o3.Irreps([(self.channels, (l3, (-1) ** l3)) for _, _, l3 in paths])  # as block layout
        self.paths_per_l = [n for _, _, n, _ in self.groups]
        # the per-atom layout contracts runs of consecutive paths sharing (l3, l_in) (paths are sorted by l3,
        # then l_in), each with only l_in's 2l_in+1 components: (group, l_in, paths in the run) in path order
        self.runs = [(g, l_in, sum(1 for p in paths[first:first + n] if p[0] == l_in))
                     for g, (_, first, n, _) in enumerate(self.groups)
                     for l_in in sorted({p[0] for p in paths[first:first + n]})]
        run_blocks, path = [], 0
        for g, l_in, count in self.runs:  # (dim_sh, [paths, 2l_in+1, 2l3+1]) per run, side by side
            l3, first, n, _ = self.groups[g]
            block = blocks[g].reshape(dim_sh, 2 * l3 + 1, n, dim_in)[:, :, path - first:path - first + count,
                                                                      l_in * l_in:(l_in + 1) ** 2]
            run_blocks.append(block.permute(0, 2, 3, 1).reshape(dim_sh, -1))
            path += count
        self.register_buffer("coupling_by_run", torch.cat(run_blocks, dim=1).to(torch.get_default_dtype()),
                             persistent=False)
        self.register_buffer("path_layout", fused.path_layout(paths), persistent=False)  # for the fused kernel
        self.kernel_shape = fused.kernel_shape(self.channels, dim_in, dim_sh, self.coupling_by_run, paths)
        self.fused_kernel = False  # set on compiled copies (`compile_potential`): tabulated sums by the C kernel
        self.weight_numel = len(paths) * self.channels
        self.radial = radial.build(self.weight_numel)
        self.avg_num_neighbors = float(avg_num_neighbors)

    def forward(self, node_feats: torch.Tensor, edge_sh: torch.Tensor, lengths: torch.Tensor,
                receivers: torch.Tensor, senders: torch.Tensor,
                segments: NeighbourSegments | None = None, pair: torch.Tensor | None = None) -> list[torch.Tensor]:
        n_nodes, n_edges, c = node_feats.shape[0], edge_sh.shape[0], self.channels
        table = tabulated(self.radial, lengths)
        if table is not None and segments is not None:  # the table read per slot, fused into the sums' kernels
            if pair is not None:
                lengths = lengths.index_select(0, pair)
            filled = segments.pad(torch.ones_like(lengths), 0)                            # (N·D,) 1 or 0
            float32_on_cpu = lengths.dtype == torch.float32 and lengths.device.type == "cpu"
            if self.fused_kernel and float32_on_cpu and fused.available(*self.kernel_shape):
                return self._fused_sums(node_feats, edge_sh, segments.pad(lengths, 0), filled, senders, table)
            weights = table(segments.pad(lengths, 0)) * filled.unsqueeze(-1)
            weights = weights.reshape(weights.shape[0], len(self.paths), c)             # (N·D, paths, C)
        else:
            weights = self.radial(lengths)                                               # (E or P, paths·C)
            if pair is not None:  # one row per bond → one per edge
                weights = gather_rows(weights, pair)
            weights = weights.reshape(weights.shape[0], len(self.paths), c)            # (E, paths, C)
            if segments is not None:  # zeros in the padding slots: those contribute nothing
                weights = segments.pad(weights, 0)                                         # (N·D, paths, C)
        # (N, dim_in, C) made contiguous before the gather, so that the gather copies whole rows
        features = gather_rows(to_channel_layout(node_feats, c, self.lmax_in).transpose(1, 2).contiguous(), senders)
        if segments is not None:
            return self._segment_sums(weights, features, edge_sh, segments)
        if self.dim_in == 1:  # scalar inputs (first layer): radial weights folded into the features
            weights = weights * features                                                    # (E, paths, C)
        widths = [self.dim_in * n * (2 * l3 + 1) for l3, _, n, _ in self.groups]
        couplings = (edge_sh[:, :self.dim_sh] @ self.coupling_by_l3).split(widths, dim=1)
        blocks = []
        for (l3, first, num_paths, _), coupling in zip(self.groups, couplings):  # paths sharing l3 at once
            width = 2 * l3 + 1
            path_weights = weights[:, None, first:first + num_paths, :]                    # (E, 1, paths, C)
            if self.dim_in == 1:
                messages = coupling.reshape(n_edges, width, num_paths, 1) * path_weights
            else:  # (E, (2l3+1)·paths, dim_in) @ (E, dim_in, C)
                products = torch.bmm(coupling.reshape(n_edges, width * num_paths, self.dim_in), features)
                messages = products.reshape(n_edges, width, num_paths, c) * path_weights  # (E, 2l3+1, paths, C)
            summed = messages.new_zeros(n_nodes, width, num_paths, c).index_add_(0, receivers, messages)
            blocks.append((summed / self.avg_num_neighbors).permute(0, 3, 2, 1))  # (N, C, paths, 2l3+1) view
        return blocks

    def _fused_sums(self, node_feats: torch.Tensor, edge_sh: torch.Tensor, lengths: torch.Tensor,
                    filled: torch.Tensor, senders: torch.Tensor, table: TabulatedRadial) -> list[torch.Tensor]:
        """The neighbour sums by the hand-fused kernel (`mlip.nn.tabulated_convolution`): lengths, filled, edge_sh
        and senders in the slot layout (N·D rows), `table` the radial function's `TabulatedRadial`."""
        c = self.channels
        features = to_channel_layout(node_feats, c, self.lmax_in).transpose(1, 2).contiguous()  # (N, dim_in, C)
        widths = [n * (2 * l3 + 1) for l3, _, n, _ in self.groups]
        out = fused.tabulated_convolution(edge_sh[:, :self.dim_sh], lengths, filled, table.coefficients, features,
                                          senders, self.coupling_by_run, self.path_layout, sum(widths),
                                          table.cutoff, 1.0 / self.avg_num_neighbors)       # (N·columns, C)
        n_nodes = features.shape[0]
        return [block.reshape(n_nodes, 2 * l3 + 1, n, c).permute(0, 3, 2, 1)          # (N, C, paths, 2l3+1) views
                for block, (l3, _, n, _) in zip(out.split([n_nodes * w for w in widths]), self.groups)]

    def _segment_sums(self, weights: torch.Tensor, features: torch.Tensor, edge_sh: torch.Tensor,
                      segments: NeighbourSegments) -> list[torch.Tensor]:
        """The neighbour sums as per-atom matrix products: weights (E, paths, C), features (E, dim_in, C).

        Each run of paths sharing (l3, l_in) contracts only l_in's 2l_in+1 feature components, so the
        per-edge factor R ⊙ h_j holds Σ_paths (2l_in+1) rows per edge (fewer than the messages' rows).
        Operands are split once, not sliced per run (a slice's backward fills a full-size zero tensor)."""
        n_edges = edge_sh.shape[0]
        widths = [count * (2 * l_in + 1) * (2 * self.groups[g][0] + 1) for g, l_in, count in self.runs]
        lefts = (edge_sh[:, :self.dim_sh] @ self.coupling_by_run).split(widths, dim=1)
        path_weights = weights.split([count for _, _, count in self.runs], dim=1)           # (E, paths, C) each
        components = features.split([2 * l + 1 for l in range(self.lmax_in + 1)], dim=1)  # (E, 2l_in+1, C) each
        sums: list[list[torch.Tensor]] = [[] for _ in self.groups]
        for (g, l_in, count), left, weight in zip(self.runs, lefts, path_weights):
            width = 2 * self.groups[g][0] + 1
            left = left.reshape(n_edges, count, 2 * l_in + 1, width).transpose(0, 1)    # (paths, E, 2l_in+1, 2l3+1)
            if torch.compiler.is_compiling():  # one fused reduction per run, no (paths, E, 2l_in+1, C) factor
                sums[g].append(segments.fused_neighbour_sum(left, weight.transpose(0, 1), components[l_in]))
                continue
            right = weight.transpose(0, 1)[:, :, None, :] * components[l_in]           # (paths, E, 2l_in+1, C)
            sums[g].append(segments.neighbour_sum(left, right))                         # (paths, N, 2l3+1, C)
        return [((parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)) / self.avg_num_neighbors)
                .permute(1, 3, 0, 2) for parts in sums]                                # (N, C, paths, 2l3+1)
