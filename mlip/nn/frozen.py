"""e3nn's linear maps as one matrix product once the weights are frozen (inference).

An equivariant linear map (`o3.Linear`) or a tensor product with the one-hot species
(`o3.FullyConnectedTensorProduct(irreps, "Sx0e", ...)`, the self-connection) is, for fixed weights, a
plain matrix (one per species). e3nn evaluates it as one small einsum per path through generated
code: ~100 µs for 64 atoms × 128 features on one core, where the product itself takes ~10 µs. With
the weights frozen (`requires_grad` off, as the calculator, the simulation engines and the speed
benchmarks run models), the matrix is read off the module once by probing it with the identity
(exact: the map is linear) and kept until the weights change (their version counter, storage,
dtype or device). With trainable weights, under torch.compile / torch.export, or for inputs
that are not (N, features), the e3nn code runs as before. Parameters and state-dict keys are
e3nn's, so model files are unchanged.
"""

from __future__ import annotations

import torch
from e3nn import o3


def frozen(weight: torch.Tensor) -> bool:
    """The weights need no gradient and no compiler is tracing (whose guards cannot read versions)."""
    exporting = getattr(torch.compiler, "is_exporting", lambda: False)()  # torch >= 2.5
    return weight.numel() > 0 and not weight.requires_grad and not torch.compiler.is_compiling() and not exporting


def weight_key(weight: torch.Tensor) -> tuple:
    """What identifies a weight tensor's values: in-place updates bump the version, `.to()` makes a new storage."""
    return weight._version, weight.data_ptr(), weight.dtype, weight.device


class FrozenDenseLinear(o3.Linear):
    """`o3.Linear`; with frozen weights y = x @ M + b with M (in, out) and b (out,) read off the module.

    Shapes: x (N, irreps_in.dim) → (N, irreps_out.dim) (other shapes: e3nn's forward).
    """

    def forward(self, features: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        if weight is not None or features.dim() != 2 or not frozen(self.weight):
            return super().forward(features, weight)
        matrix, bias = self._dense(features.dtype, features.device)
        return torch.addmm(bias, features, matrix)

    def _dense(self, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = weight_key(self.weight) + (dtype, device)
        cached = getattr(self, "_dense_cache", None)
        if cached is None or cached[0] != key:
            with torch.no_grad():
                probe = torch.cat([torch.zeros(1, self.irreps_in.dim, dtype=dtype, device=device),
                                   torch.eye(self.irreps_in.dim, dtype=dtype, device=device)])
                out = super().forward(probe)
                bias = out[0].contiguous()
                cached = (key, (out[1:] - bias).contiguous(), bias)
            self._dense_cache = cached
        return cached[1], cached[2]


class FrozenDenseSpeciesProduct(o3.FullyConnectedTensorProduct):
    """`o3.FullyConnectedTensorProduct(irreps_in, "Sx0e", irreps_out)` (features ⊗ species weights, NequIP's
    self-connection); with frozen weights y = Σ_s z_s (x @ M_s), M (S, in, out) read off the module
    (bilinear, so exact for any z, one-hot or not).

    Shapes: x (N, irreps_in1.dim), z (N, S) → (N, irreps_out.dim).
    """

    def forward(self, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        if weight is not None or x.dim() != 2 or y.dim() != 2 or not frozen(self.weight):
            return super().forward(x, y, weight)
        matrices = self._dense(x.dtype, x.device)                                   # (in, S·out)
        species, dim_out = y.shape[1], self.irreps_out.dim
        products = (x @ matrices).reshape(x.shape[0], species, dim_out)
        if species == 1:
            return products[:, 0] * y
        return torch.bmm(y.unsqueeze(1), products).squeeze(1)

    def _dense(self, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        key = weight_key(self.weight) + (dtype, device)
        cached = getattr(self, "_dense_cache", None)
        if cached is None or cached[0] != key:
            dim_in, species = self.irreps_in1.dim, self.irreps_in2.dim
            with torch.no_grad():
                eye = torch.eye(dim_in, dtype=dtype, device=device)
                blocks = [super(FrozenDenseSpeciesProduct, self).forward(
                    eye, torch.eye(species, dtype=dtype, device=device)[s].expand(dim_in, species))
                    for s in range(species)]                                             # (in, out) each
                cached = (key, torch.cat(blocks, dim=1).contiguous())
            self._dense_cache = cached
        return cached[1]
