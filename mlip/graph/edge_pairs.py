"""Pairs of opposite edges: i → j with cell shift s and j → i with −s have the same length.

A full neighbour list holds every bond twice, once from each end. Anything that depends on the
bond length only (a radial network, a distance basis) needs evaluating once per bond, and the
two directed edges then read the same row: half the work, the same numbers (the two edge
vectors are exact negatives in floating point, so their lengths are bitwise equal).
"""

from __future__ import annotations

import torch

# int64 keys (receiver, sender, shift) must stay below this
_KEY_LIMIT = 2**62


def edge_pairs(receivers: torch.Tensor, senders: torch.Tensor, shifts: torch.Tensor,
               num_nodes: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(representative, pair): `pair[e]` is the bond of edge e, `representative[p]` one edge of bond p
    (the lowest index); an edge without its opposite in the list is a bond of its own.

    Shapes: receivers, senders (E,) int64 in [0, num_nodes); shifts (E, 3) integer cell offsets
    (any dtype) → representative (P,) int64, pair (E,) int64, E/2 ≤ P ≤ E. None when there are no
    edges or the keys would overflow int64 (more than ~10⁶ atoms with shifts of many cells).
    """
    n_edges = receivers.shape[0]
    if n_edges == 0:
        return None
    shifts = shifts.round().to(torch.int64)
    half = int(shifts.abs().max())
    base = 2 * half + 1
    if num_nodes * num_nodes * base ** 3 >= _KEY_LIMIT:
        return None
    # the shift as one signed integer whose sign is that of its first non-zero component (balanced base)
    code = (shifts[:, 0] * base + shifts[:, 1]) * base + shifts[:, 2]
    flip = (receivers > senders) | ((receivers == senders) & (code < 0))  # orient every bond one way
    first = torch.where(flip, senders, receivers)
    second = torch.where(flip, receivers, senders)
    code = torch.where(flip, -code, code)
    keys = (first * num_nodes + second) * base ** 3 + code + (base ** 3 - 1) // 2
    _, pair = torch.unique(keys, return_inverse=True)
    num_pairs = int(pair.max()) + 1
    edges = torch.arange(n_edges, device=receivers.device)
    representative = torch.full((num_pairs,), n_edges, dtype=torch.int64, device=receivers.device)
    representative = representative.scatter_reduce(0, pair, edges, reduce="amin")
    return representative, pair
