"""Small helpers over e3nn irreps."""

from __future__ import annotations

import math

import torch
from e3nn import o3


def hidden_irreps(channels: int, lmax: int) -> o3.Irreps:
    """`channels` copies of every l ≤ lmax with its natural parity (-1)^l: e.g. 32x0e+32x1o+32x2e."""
    return o3.Irreps([(channels, (l, (-1) ** l)) for l in range(lmax + 1)])


def keep_irs(irreps: o3.Irreps, allowed: o3.Irreps) -> list[o3.Irrep]:
    """The irreps of `irreps` whose type appears in `allowed` (for e3nn's filter_ir_out)."""
    kinds = {ir for _, ir in allowed}
    return [ir for _, ir in irreps if ir in kinds]


def to_channel_layout(x: torch.Tensor, channels: int, lmax: int) -> torch.Tensor:
    """e3nn block layout [C×0e | C×1o | ...] (rows, C·(lmax+1)²) → (rows, C, (lmax+1)²)."""
    blocks, start = [], 0
    for l in range(lmax + 1):
        blocks.append(x[:, start:start + channels * (2 * l + 1)].reshape(x.shape[0], channels, 2 * l + 1))
        start += channels * (2 * l + 1)
    return torch.cat(blocks, dim=-1)


def to_block_layout(x: torch.Tensor, ls: list[int]) -> torch.Tensor:
    """(rows, C, Σ(2l+1)) with consecutive pieces of degree `ls` → e3nn block layout (rows, C·Σ(2l+1))."""
    blocks, start = [], 0
    for l in ls:
        blocks.append(x[:, :, start:start + 2 * l + 1].reshape(x.shape[0], -1))
        start += 2 * l + 1
    return torch.cat(blocks, dim=-1)


def coupling_paths(lmax1: int, lmax2: int, lmax_out: int, symmetric: bool = False) -> list[tuple[int, int, int]]:
    """(l1, l2, l3) with l3 ≤ lmax_out allowed by the triangle rule and natural parity, sorted by l3.

    `symmetric=True` (both inputs the same tensor) keeps l1 ≤ l2: the swapped pair spans the same outputs.
    """
    paths = [(l1, l2, l3) for l1 in range(lmax1 + 1) for l2 in range(lmax2 + 1)
             for l3 in range(abs(l1 - l2), min(l1 + l2, lmax_out) + 1)
             if (l1 + l2 + l3) % 2 == 0 and not (symmetric and l2 < l1)]
    return sorted(paths, key=lambda p: (p[2], p[0], p[1]))


def coupling_tensor(paths: list[tuple[int, int, int]], lmax1: int, lmax2: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense Clebsch-Gordan tensor of all `paths`: ((lmax1+1)², (lmax2+1)², n_out), float64, and the path of
    every output column (n_out,). Output columns are grouped by path; component normalisation
    (unit-variance inputs give unit-variance outputs per l3, summed over its paths)."""
    n_out = sum(2 * l3 + 1 for _, _, l3 in paths)
    coupling = torch.zeros((lmax1 + 1) ** 2, (lmax2 + 1) ** 2, n_out, dtype=torch.float64)
    fan_in = {l3: sum(1 for p in paths if p[2] == l3) for _, _, l3 in paths}
    path_of_column, column = [], 0
    for index, (l1, l2, l3) in enumerate(paths):
        w3j = o3.wigner_3j(l1, l2, l3, dtype=torch.float64) * math.sqrt((2 * l3 + 1) / fan_in[l3])
        coupling[l1 * l1:(l1 + 1) ** 2, l2 * l2:(l2 + 1) ** 2, column:column + 2 * l3 + 1] = w3j
        path_of_column += [index] * (2 * l3 + 1)
        column += 2 * l3 + 1
    return coupling, torch.tensor(path_of_column, dtype=torch.long)


def path_groups(paths: list[tuple[int, int, int]]) -> list[tuple[int, int, int, int]]:
    """(l3, first path, number of paths, first column) of each run of `paths` sharing l3 (paths sorted by l3)."""
    groups, column = [], 0
    for l3 in sorted({p[2] for p in paths}):
        members = [i for i, p in enumerate(paths) if p[2] == l3]
        groups.append((l3, members[0], len(members), column))
        column += len(members) * (2 * l3 + 1)
    return groups


def groups_to_block_layout(groups: list[torch.Tensor]) -> torch.Tensor:
    """Path groups [(rows, C, paths, 2l+1), ...] → e3nn block layout, one C×(2l+1) block per path, in order."""
    return torch.cat([g.transpose(1, 2).reshape(g.shape[0], -1) for g in groups], dim=-1)
