"""Attention restricted to the neighbour graph, smooth at the cutoff."""

from __future__ import annotations

import math

import torch
from torch import nn

from mlip.nn.gather import gather_rows


class NeighborAttention(nn.Module):
    """Multi-head attention of each atom over its neighbours within the cutoff and itself.

    Logits q_i·k_j/√d + b_h(e_ij) (e_ij: edge features, e.g. of the relative vector), weights exp(logit)·u(r_ij) normalised
    over {i} ∪ neighbours(i), where u is a cutoff envelope: an edge's weight goes smoothly to
    zero at the cutoff, so the energy stays smooth when atoms cross it, and an isolated atom
    attends to itself. Cost is linear in edges.

    Shapes: x (N, D), edge_features (E, K), envelope (E,), receivers/senders (E,) → (N, D).
    With `segments` (`mlip.nn.segments.NeighbourSegments`) the edge inputs come in its slot layout
    instead (E = N·degree rows; envelope 0 and `filled` False in the padding; receivers unused), and the
    per-atom softmax and sums are dense reductions over each atom's slots: no scatter to receivers, which
    under torch.compile becomes a loop of atomic adds on a CPU (the same sums, in another order).

    `weights="silu"` (TorchMD-Net's equivariant transformer): unnormalised weights SiLU(logit)·u(r_ij)/n̄
    (n̄ = `avg_num_neighbors`) and SiLU(self logit) for the atom itself, summed, not averaged: the sum keeps how
    many neighbours there are (a density), which a softmax average divides out.
    """

    def __init__(self, dim: int, heads: int, edge_dim: int, edge_filter: bool = False, weights: str = "softmax",
                 avg_num_neighbors: float = 1.0):
        super().__init__()
        if weights not in ("softmax", "silu"):
            raise ValueError(f"attention weights must be 'softmax' or 'silu', got '{weights}'")
        self.normalised, self.avg_num_neighbors = weights == "softmax", float(avg_num_neighbors)
        self.edge_filter = bool(edge_filter)
        if self.edge_filter:  # SchNet-style continuous filter: values v_j ⊙ W_f e_ij (+ W_v e_ij)
            self.edge_gate = nn.Linear(edge_dim, dim)
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.edge_bias = nn.Linear(edge_dim, heads, bias=False)
        self.edge_value = nn.Linear(edge_dim, dim, bias=False)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, edge_features: torch.Tensor, envelope: torch.Tensor, receivers: torch.Tensor,
                senders: torch.Tensor, segments=None, filled: torch.Tensor | None = None) -> torch.Tensor:
        n, h, d = x.shape[0], self.heads, self.head_dim
        q, k, v = self.qkv(x).view(n, 3, h, d).unbind(1)
        scale = 1.0 / math.sqrt(d)
        if segments is not None:
            return self._slot_attention(q, k, v, edge_features, envelope, senders, segments.degree, filled, scale)
        # index_select, not x[index]: its backward is index_add, several times faster on CPU (and under
        # torch.compile `gather_rows` keeps that kernel instead of Inductor's atomic adds)
        q_edge, k_edge = gather_rows(q, receivers), gather_rows(k, senders)
        edge_logits = (q_edge * k_edge).sum(-1) * scale + self.edge_bias(edge_features)  # (E, H)
        self_logits = (q * k).sum(-1) * scale  # (N, H)
        if self.normalised:
            # Softmax is shift invariant: subtract a per-atom maximum (no gradient needed through it).
            index = receivers.unsqueeze(-1).expand_as(edge_logits)
            peak = self_logits.detach().scatter_reduce(0, index, edge_logits.detach(), reduce="amax", include_self=True)
            edge_w = torch.exp(edge_logits - peak.index_select(0, receivers)) * envelope.unsqueeze(-1)
            self_w = torch.exp(self_logits - peak)
        else:
            edge_w = nn.functional.silu(edge_logits) * (envelope / self.avg_num_neighbors).unsqueeze(-1)
            self_w = nn.functional.silu(self_logits)
        edge_v = self._values(gather_rows(v, senders), edge_features)
        mixed = (self_w.unsqueeze(-1) * v).index_add(0, receivers, edge_w.unsqueeze(-1) * edge_v)
        if self.normalised:
            mixed = mixed / self_w.index_add(0, receivers, edge_w).unsqueeze(-1)  # over {i} ∪ neighbours(i)
        return self.out(mixed.reshape(n, h * d))

    def _values(self, sender_v: torch.Tensor, edge_features: torch.Tensor) -> torch.Tensor:
        """Edge values: the sender's value (filtered with `edge_filter`) + a linear map of the edge features.
        sender_v (E, H, d), edge_features (E, K) → (E, H, d)."""
        h, d = self.heads, self.head_dim
        if self.edge_filter:
            sender_v = sender_v * self.edge_gate(edge_features).view(-1, h, d)
        return sender_v + self.edge_value(edge_features).view(-1, h, d)

    def _slot_attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, edge_features: torch.Tensor,
                        envelope: torch.Tensor, senders: torch.Tensor, degree: int, filled: torch.Tensor,
                        scale: float) -> torch.Tensor:
        """The attention with every atom's edges in `degree` slots. q, k, v (N, H, d); edge_features (N·D, K),
        envelope (N·D,), senders (N·D,), filled (N·D,) bool → (N, H·d)."""
        n, h, d = q.shape[0], self.heads, self.head_dim
        k_edge = gather_rows(k, senders).view(n, degree, h, d)
        edge_logits = (q.unsqueeze(1) * k_edge).sum(-1) * scale + self.edge_bias(edge_features).view(n, degree, h)
        self_logits = (q * k).sum(-1) * scale                                                    # (N, H)
        if self.normalised:
            empty = ~filled.view(n, degree, 1)
            edge_logits = edge_logits.masked_fill(empty, float("-inf"))  # padding: weight exactly 0, never inf · 0
            peak = torch.maximum(self_logits.detach(), edge_logits.detach().amax(1))
            edge_w = torch.exp(edge_logits - peak.unsqueeze(1)) * envelope.view(n, degree, 1)   # (N, D, H)
            self_w = torch.exp(self_logits - peak)
        else:  # padding: envelope 0
            edge_w = nn.functional.silu(edge_logits) * (envelope / self.avg_num_neighbors).view(n, degree, 1)
            self_w = nn.functional.silu(self_logits)
        edge_v = self._values(gather_rows(v, senders), edge_features).view(n, degree, h, d)
        mixed = self_w.unsqueeze(-1) * v + (edge_w.unsqueeze(-1) * edge_v).sum(1)
        if self.normalised:
            mixed = mixed / (self_w + edge_w.sum(1)).unsqueeze(-1)
        return self.out(mixed.reshape(n, h * d))


class MoleculeAttention(nn.Module):
    """Multi-head attention of every atom over all atoms of its structure (TransIP-style, no cutoff).

    Queries and keys carry rotary encodings of the atoms' positions (`Rotary3D`), so logits see
    relative vectors; a learned per-head bias of the pair distance (radial basis, shared by the
    layers) adds the invariant part. Cost is quadratic in the atoms of a structure: meant for
    molecules. Structures are padded to the largest one of the batch; padding is masked out.

    Shapes: x (B, n, D) padded tokens, positions (B, n, 3) Å, distance_basis (B, n, n, K),
    mask (B, n) True for real atoms → (B, n, D).
    """

    def __init__(self, dim: int, heads: int, distance_basis: int):
        super().__init__()
        from mlip.nn.rotary import Rotary3D

        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.rotary = Rotary3D(heads, self.head_dim)
        self.distance_bias = nn.Linear(distance_basis, heads, bias=False)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, positions: torch.Tensor, distance_basis: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        h, d = self.heads, self.head_dim
        q, k, v = self.qkv(x).view(b, n, 3, h, d).unbind(2)                       # (B, n, H, d)
        flat_positions = positions.reshape(b * n, 3)
        q = self.rotary(q.reshape(b * n, h, d), flat_positions).view(b, n, h, d)
        k = self.rotary(k.reshape(b * n, h, d), flat_positions).view(b, n, h, d)
        logits = torch.einsum("bihd,bjhd->bhij", q, k) / math.sqrt(d)
        logits = logits + self.distance_bias(distance_basis).permute(0, 3, 1, 2)   # (B, H, n, n)
        logits = logits.masked_fill(~mask[:, None, None, :], float("-inf"))
        weights = torch.softmax(logits, dim=-1)
        mixed = torch.einsum("bhij,bjhd->bihd", weights, v).reshape(b, n, h * d)
        return self.out(mixed)
