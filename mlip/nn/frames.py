"""Frame averaging (Puny et al. 2022): exact rotation invariance for any backbone.

The frames of a structure are the orthonormal bases of its principal axes: centred positions X,
covariance C = XᵀX / n = U Λ Uᵀ, frames F = U·diag(s) for the 8 sign choices s ∈ {±1}³ (O(3))
or the 4 with det F = +1 (SO(3)). Coordinates in a frame, X F, are the same for X and X Rᵀ
(for every rotation, and for every reflection with O(3)): a backbone averaged over the frames
is invariant whatever it is, and exactly so in floating point up to the eigensolver.

Degenerate axes (two equal principal moments: planar rings, symmetric tops) leave U undefined
inside their plane, so the energy would jump as two moments cross. Near a crossing, where the
relative gap g = (λ_b − λ_a) / λ_max falls below `tolerance`, the frames are averaged over
`plane_samples` rotations inside that plane as well, with weight 1 − w(g), w = smoothstep(g /
tolerance): energy and forces stay continuous away from the crossing, and at the crossing the
remaining dependence on the arbitrary in-plane axes shrinks as `plane_samples` grows (measured in
tests/test_frames.py and the README). Eigenvector derivatives divide by moment differences; a
tiny broadening keeps them finite at exact degeneracy (`symmetric_eigh`).
"""

from __future__ import annotations

import itertools
import math

import torch


class _BroadenedEigh(torch.autograd.Function):
    """eigh of symmetric (B, 3, 3) matrices whose backward uses (λ_j − λ_i) / ((λ_j − λ_i)² + η²)
    instead of 1 / (λ_j − λ_i): exact wherever the moments differ by ≫ η, finite where they
    coincide. Twice differentiable (forces are trained through it)."""

    @staticmethod
    def forward(ctx, matrices: torch.Tensor, broadening: float):
        values, vectors = torch.linalg.eigh(matrices)
        ctx.save_for_backward(values, vectors)
        ctx.broadening = broadening
        return values, vectors

    @staticmethod
    def backward(ctx, grad_values: torch.Tensor, grad_vectors: torch.Tensor):
        values, vectors = ctx.saved_tensors
        differences = values.unsqueeze(-2) - values.unsqueeze(-1)          # [i, j] = λ_j − λ_i
        scale = values.abs().amax(-1, keepdim=True).unsqueeze(-1).clamp_min(1e-30)
        eta = ctx.broadening * scale
        inverse = differences / (differences.square() + eta.square())
        inner = vectors.transpose(-1, -2) @ grad_vectors                  # Uᵀ Ū
        middle = torch.diag_embed(grad_values) + inverse * inner
        grad = vectors @ middle @ vectors.transpose(-1, -2)
        return 0.5 * (grad + grad.transpose(-1, -2)), None


def symmetric_eigh(matrices: torch.Tensor, broadening: float = 1e-9) -> tuple[torch.Tensor, torch.Tensor]:
    """Ascending eigenvalues (B, 3) and eigenvectors as columns (B, 3, 3) of symmetric matrices,
    with a backward that stays finite at degenerate eigenvalues (relative broadening)."""
    return _BroadenedEigh.apply(matrices, broadening)


def _smoothstep(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _plane_rotation(angles: torch.Tensor, a: int, b: int) -> torch.Tensor:
    """(M, 3, 3) rotations by `angles` inside the plane of axes a and b (right-multiplied on frames)."""
    matrices = torch.eye(3, dtype=angles.dtype, device=angles.device).repeat(angles.shape[0], 1, 1)
    cos, sin = torch.cos(angles), torch.sin(angles)
    matrices[:, a, a], matrices[:, b, b], matrices[:, a, b], matrices[:, b, a] = cos, cos, -sin, sin
    return matrices


class PrincipalFrames:
    """Frames of every structure of a batch (see the module docstring).

    Args:
        group: "O3" (8 frames: rotations and reflections) or "SO3" (4 frames: rotations only).
        tolerance: relative moment gap below which a plane counts as near-degenerate.
        plane_samples: rotations averaged inside a near-degenerate plane (1: no handling).
    """

    def __init__(self, group: str = "O3", tolerance: float = 0.05, plane_samples: int = 4):
        if group not in ("O3", "SO3"):
            raise ValueError(f"frame group must be 'O3' or 'SO3', got '{group}'")
        if plane_samples < 1 or tolerance < 0:
            raise ValueError(f"plane_samples must be >= 1 and tolerance >= 0, got {plane_samples}, {tolerance}")
        self.group, self.tolerance, self.plane_samples = group, float(tolerance), int(plane_samples)
        signs = [s for s in itertools.product((1.0, -1.0), repeat=3)]
        self.signs = torch.tensor(signs)  # (8, 3); SO(3) keeps those that make det(U diag(s)) = +1

    @property
    def count(self) -> int:
        """Frames per structure away from degeneracy."""
        return 8 if self.group == "O3" else 4

    def __call__(self, positions: torch.Tensor, batch: torch.Tensor, num_graphs: int
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Frames of the structures in a batch.

        Shapes: positions (N, 3) Å, batch (N,) structure of each atom →
        centred positions (N, 3), frames (F, 3, 3) (columns: axes), structure of each frame (F,),
        weight of each frame (F,) (the weights of one structure sum to 1).
        """
        dtype = positions.dtype
        work = positions.to(torch.float64)  # the eigensolver's precision decides invariance
        counts = torch.bincount(batch, minlength=num_graphs).clamp_min(1).to(torch.float64)
        centres = work.new_zeros(num_graphs, 3).index_add_(0, batch, work) / counts[:, None]
        centred = work - centres.index_select(0, batch)
        outer = centred.unsqueeze(-1) * centred.unsqueeze(-2)
        covariance = work.new_zeros(num_graphs, 3, 3).index_add_(0, batch, outer) / counts[:, None, None]
        values, vectors = symmetric_eigh(covariance)
        signs = self.signs.to(work)
        frames = vectors.unsqueeze(1) * signs.view(1, 8, 1, 3)                   # (B, 8, 3, 3)
        weights = work.new_full((num_graphs, 8), 1.0 / self.count)
        if self.group == "SO3":
            keep = torch.linalg.det(frames) > 0                                   # exactly 4 per structure
            frames, weights = frames[keep].view(num_graphs, 4, 3, 3), weights[keep].view(num_graphs, 4)
        frames, weights = self._average_planes(frames, weights, values)
        structure = torch.arange(num_graphs, device=positions.device).repeat_interleave(frames.shape[1])
        frames, weights = frames.reshape(-1, 3, 3), weights.reshape(-1)
        used = weights > 0
        return (centred.to(dtype), frames[used].to(dtype), structure[used], weights[used].to(dtype))

    def _average_planes(self, frames: torch.Tensor, weights: torch.Tensor, values: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames (B, K, 3, 3) and weights (B, K) → (B, K·M², 3, 3), (B, K·M²): each frame also turned
        inside the planes of axes (0, 1) and (1, 2), weighted by how near their moments are."""
        m = self.plane_samples
        if m == 1:
            return frames, weights
        largest = values[:, 2:].abs().clamp_min(1e-30)
        angles = torch.arange(m, dtype=values.dtype, device=values.device) * (math.pi / m)
        for a in (0, 1):
            gap = (values[:, a + 1] - values[:, a]) / largest[:, 0]
            defined = _smoothstep(gap / self.tolerance) if self.tolerance > 0 else torch.ones_like(gap)
            turn = torch.full((values.shape[0], m), 1.0 / m, dtype=values.dtype, device=values.device)
            turn = turn * (1.0 - defined)[:, None]
            turn[:, 0] = turn[:, 0] + defined                                   # (B, M), rows sum to 1
            rotations = _plane_rotation(angles, a, a + 1)                        # (M, 3, 3)
            frames = (frames.unsqueeze(2) @ rotations.view(1, 1, m, 3, 3)).flatten(1, 2)
            weights = (weights.unsqueeze(2) * turn.unsqueeze(1)).flatten(1, 2)
        return frames, weights
