"""Equivariant linear maps in channel layout: many copies (paths) of each l mixed into C outputs per l."""

from __future__ import annotations

import torch
from torch import nn

from mlip.nn.frozen import frozen, weight_key


class PathLinear(nn.Module):
    """out_l[c'] = Σ_{c,p} W_l[(c,p), c'] x_{l,p}[c] / √(C·P_l) for every l: e3nn's `o3.Linear` from
    P_l copies of C channels of degree l to C' channels, computed as one matrix product per l
    (not one per copy), for inputs that come as groups of paths sharing l.

    Equivariant because W acts on channels and paths only, never on the 2l+1 components.
    `paths_per_l[l]` is P_l for l = 0, 1, ... (every l present at least once).

    Shapes: groups [(N, C, P_l, 2l+1) for l = 0..L] → (N, C', (L+1)²) channel layout.
    """

    def __init__(self, channels_in: int, channels_out: int, paths_per_l: list[int]):
        super().__init__()
        if not paths_per_l or min(paths_per_l) < 1:
            raise ValueError(f"every l from 0 up needs at least one path, got {paths_per_l}")
        self.paths_per_l = list(paths_per_l)
        self.weights = nn.ParameterList(nn.Parameter(torch.randn(channels_in * p, channels_out))
                                        for p in self.paths_per_l)
        self.scales = [(channels_in * p) ** -0.5 for p in self.paths_per_l]

    def forward(self, groups: list[torch.Tensor]) -> torch.Tensor:
        outputs = []
        for x, matrix in zip(groups, self.matrices()):
            n, c, p, width = x.shape
            # rows of W in (path, channel) order: the convolution's sums are stored (N, 2l+1, paths, C), so
            # this reshape is free for them (a copy for other inputs, as any order would be)
            mixed = x.permute(0, 3, 2, 1).reshape(n, width, p * c) @ matrix          # (N, 2l+1, C')
            outputs.append(mixed.transpose(1, 2))
        return torch.cat(outputs, dim=-1)

    def matrices(self) -> list[torch.Tensor]:
        """W_l / √(C·P_l) with rows in (path, channel) order, (P_l·C, C') per l; kept while the weights
        are frozen and unchanged (`mlip.nn.frozen`), rebuilt every call while they train."""
        if not all(frozen(weight) for weight in self.weights):
            return self._matrices()
        key = [weight_key(weight) for weight in self.weights]
        cached = getattr(self, "_matrix_cache", None)
        if cached is None or cached[0] != key:
            with torch.no_grad():
                cached = (key, [m.contiguous() for m in self._matrices()])
            self._matrix_cache = cached
        return cached[1]

    def _matrices(self) -> list[torch.Tensor]:
        return [weight.reshape(-1, p, weight.shape[1]).transpose(0, 1).reshape(-1, weight.shape[1]) * scale
                for weight, p, scale in zip(self.weights, self.paths_per_l, self.scales)]
