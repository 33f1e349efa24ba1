"""Equivariant dropout that torch.compile can trace: whole irreps of an atom dropped together."""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn


class IrrepDropout(nn.Module):
    """While training, each irrep instance of each atom (one channel's scalar, vector, ...) is zeroed with
    probability `p` and the kept ones scaled by 1/(1 − p); identity in evaluation. Every sample of the mask
    multiplies whole irreps by one number, so it commutes with rotations and the energy stays exactly
    invariant (e3nn's `Dropout`, rewritten so that forward touches no `Irreps` object, which torch.compile
    cannot guard on: the column → instance map is a buffer built once).

    Shapes: x (N, irreps.dim) → (N, irreps.dim).
    """

    def __init__(self, irreps: o3.Irreps, p: float):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {p}")
        self.p = float(p)
        irreps = o3.Irreps(irreps)
        self.num_instances = irreps.num_irreps
        instance_of_column = [instance for instance, (l, _) in enumerate(ir for mul, ir in irreps for _ in range(mul))
                              for _ in range(2 * l + 1)]
        self.register_buffer("instance_of_column", torch.tensor(instance_of_column, dtype=torch.long),
                             persistent=False)  # follows from the irreps: not in model files

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand(x.shape[0], self.num_instances, dtype=x.dtype, device=x.device) >= self.p
        scale = keep.to(x.dtype) / (1.0 - self.p)                                       # (N, instances)
        return x * scale.index_select(1, self.instance_of_column)

    def extra_repr(self) -> str:
        return f"p={self.p}, instances={self.num_instances}"
