"""Attention among the edges of each atom (EScAIP-style neighbourhood attention), smooth at the cutoff."""

from __future__ import annotations

import math

import torch
from torch import nn


class EdgeTokenBlock(nn.Module):
    """One layer of a transformer whose tokens are the edges i→j of every atom i, then the atom's update.

    Every edge carries a token t_ij (`edge_dim`) from layer to layer, laid out per receiving atom in K
    slots (`mlip.nn.segments.NeighbourSegments`; padding slots have envelope 0). In each layer:

    1. the atoms' states enter their edges: t_ij + A x_i + B x_j (pre-norm);
    2. the K edge tokens of atom i attend to each other and to a token of atom i itself (a key and value
       that is always there, so an atom whose neighbours all leave the cutoff stays defined): weights
       exp(q_ij·k_ik/√d) u(r_ik), normalised over {i} ∪ neighbours(i), where u is the cutoff envelope;
       one edge's update thereby sees every other edge of the same atom (angles, three-body terms) in
       every layer, which attention over atoms (`NeighborAttention`) sees only after aggregation;
    3. an MLP on every edge token;
    4. x_i += W Σ_j u(r_ij) t_ij / n̄, then an MLP on x_i.

    Every edge's contribution (as a key, as a summand) carries u(r_ij), so the energy stays smooth when
    atoms cross the cutoff. Cost per atom: K tokens through the linear maps and K² logits.

    Shapes: x (N, dim), tokens (N·K, edge_dim), envelope (N·K,) zeros in the padding, senders (N·K,)
    int64 (any valid atom in the padding), degree K → x (N, dim), tokens (N·K, edge_dim).
    """

    def __init__(self, dim: int, edge_dim: int, heads: int, avg_num_neighbors: float, mlp_ratio: int = 2):
        super().__init__()
        if edge_dim % heads:
            raise ValueError(f"edge_dim {edge_dim} must be divisible by heads {heads}")
        self.heads, self.head_dim, self.avg_num_neighbors = heads, edge_dim // heads, float(avg_num_neighbors)
        self.node_norm = nn.LayerNorm(dim)
        self.node_to_edges = nn.Linear(dim, 3 * edge_dim)  # receiver part, sender part, the atom's own key
        self.edge_norm = nn.LayerNorm(edge_dim)
        self.qkv = nn.Linear(edge_dim, 3 * edge_dim)
        self.centre_value = nn.Linear(dim, edge_dim, bias=False)
        self.out = nn.Linear(edge_dim, edge_dim)
        self.edge_mlp_norm = nn.LayerNorm(edge_dim)
        self.edge_mlp = nn.Sequential(nn.Linear(edge_dim, mlp_ratio * edge_dim), nn.SiLU(),
                                      nn.Linear(mlp_ratio * edge_dim, edge_dim))
        self.to_node = nn.Linear(edge_dim, dim)
        self.node_mlp_norm = nn.LayerNorm(dim)
        self.node_mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.SiLU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x: torch.Tensor, tokens: torch.Tensor, envelope: torch.Tensor, senders: torch.Tensor,
                degree: int) -> tuple[torch.Tensor, torch.Tensor]:
        n, k, h, d = x.shape[0], degree, self.heads, self.head_dim
        e = h * d
        state = self.node_norm(x)
        receiver_part, sender_part, centre_key = self.node_to_edges(state).split(e, dim=-1)
        tokens = tokens + sender_part.index_select(0, senders)
        tokens = (tokens.view(n, k, e) + receiver_part.unsqueeze(1)).reshape(n * k, e)
        q, key, value = self.qkv(self.edge_norm(tokens)).view(n, k, 3, h, d).permute(2, 0, 3, 1, 4)  # (N, H, K, d) each
        scale = 1.0 / math.sqrt(d)
        logits = torch.matmul(q, key.transpose(-1, -2)) * scale                       # (N, H, K, K)
        centre_logits = (q * centre_key.view(n, h, 1, d)).sum(-1) * scale            # (N, H, K)
        # softmax is shift invariant: a per-row maximum without gradient keeps exp finite
        peak = torch.maximum(logits.detach().amax(-1), centre_logits.detach())
        weights = torch.exp(logits - peak.unsqueeze(-1)) * envelope.view(n, 1, 1, k)
        centre_weights = torch.exp(centre_logits - peak)
        norm = weights.sum(-1) + centre_weights
        centre_value = self.centre_value(state).view(n, h, 1, d)
        mixed = (torch.matmul(weights, value) + centre_weights.unsqueeze(-1) * centre_value) / norm.unsqueeze(-1)
        tokens = tokens + self.out(mixed.permute(0, 2, 1, 3).reshape(n * k, e))
        tokens = tokens + self.edge_mlp(self.edge_mlp_norm(tokens))
        summed = (tokens * envelope.unsqueeze(-1)).view(n, k, e).sum(1) / self.avg_num_neighbors
        x = x + self.to_node(summed)
        return x + self.node_mlp(self.node_mlp_norm(x)), tokens
