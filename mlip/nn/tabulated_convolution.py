"""The convolution's neighbour sums with a tabulated radial function as one hand-fused CPU kernel (float32).

Under torch.compile the neighbour sums of the medium model, with their radial tables, took a third of a Si 512
energy + forces call (benchmarks/README.md "What ≤ 50 µs/atom-step would take"): Inductor writes each slot's
operands and their gradients (the edge's coupling block L, the radial weights R, R ⊙ x and the reductions of
the backward pass) to memory between its loops. `kernels/tabulated_convolution.c` computes, per receiving atom,
every slot's L, R (and dR/dr) and the sender's features in registers and sums them at once; its backward pass
recomputes them and returns the gradients with respect to the slot's length, harmonics and sender features.

The C file ships with the package and is built on first use, once per convolution shape (channels, paths and
their metadata are compile-time constants: `mlip.nn.kernels.build`); a build takes ~1–3 s. Without a compiler, or when the build fails, `available()`
is False and the convolution keeps its Inductor path (logged once). Float32 on CPU only, first derivatives
only (inference with frozen weights: forces and stress, not a force-trained loss).

Shapes (`tabulated_convolution`): sh (N·D, dim_sh), lengths (N·D,) Å, filled (N·D,) 1 or 0, coefficients
(pieces, 6, paths·C), features (N, dim_in, C), senders (N·D,) int64, coupling (dim_sh, left_width), meta
(7, paths) int64 → (N·out_cols, C): one (N, 2·l3+1, paths, C) block per l3, one after the other.
"""

from __future__ import annotations

import ctypes
from functools import lru_cache

import torch

from mlip.nn.gather import _scatter_rows
from mlip.nn.kernels.build import build

SOURCE = "tabulated_convolution.c"


class _Shape(ctypes.Structure):
    _fields_ = [("atoms", ctypes.c_int64), ("degree", ctypes.c_int64), ("pieces", ctypes.c_int64),
                ("cutoff", ctypes.c_float), ("scale", ctypes.c_float)]


@lru_cache(maxsize=None)
def _library(sizes: tuple[int, ...] = (1, 1, 1, 1, 1), meta: tuple[int, ...] = (0, 1, 0, 0, 1, 0, 1)) -> ctypes.CDLL | None:
    """The kernels built for one convolution shape: sizes (channels, paths, dim_in, dim_sh, left_width) and the
    flattened `path_layout`, compile-time constants of the build (the default: a one-path shape that checks the
    tool chain). None where no compiler is found or the build fails (the reason is logged)."""
    names = ("CHANNELS", "PATHS", "DIM_IN", "DIM_SH", "LEFT_WIDTH")
    library = build(SOURCE, tuple(zip(names, map(str, sizes))) + (("META", ",".join(map(str, meta))),))
    if library is not None:
        pointer = ctypes.c_void_p
        library.tabulated_convolution_forward.argtypes = [ctypes.POINTER(_Shape)] + [pointer] * 8 + [ctypes.c_int]
        library.tabulated_convolution_backward.argtypes = [ctypes.POINTER(_Shape)] + [pointer] * 11 + [ctypes.c_int]
    return library


def _library_for(features: torch.Tensor, sh: torch.Tensor, coupling: torch.Tensor, meta: torch.Tensor) -> ctypes.CDLL:
    """The kernels of this convolution's shape (built on first use)."""
    sizes = (features.shape[2], meta.shape[1], features.shape[1], sh.shape[1], coupling.shape[1])
    library = _library(sizes, tuple(meta.flatten().tolist()))
    if library is None:
        raise RuntimeError("the fused convolution kernel did not build for this shape (see the log); compile the model "
                           "with compile_potential(..., fused_kernel=False)")
    return library


@torch.compiler.assume_constant_result
def available(sizes: tuple[int, ...] = (1, 1, 1, 1, 1), meta: tuple[int, ...] = (0, 1, 0, 0, 1, 0, 1)) -> bool:
    """Whether the kernels of this convolution shape (`kernel_shape`; default: a one-path shape, the tool
    chain alone) are built and loadable here: builds them on first call, a constant to torch.compile, so a
    compiled graph takes the Inductor path where the build fails."""
    return _library(tuple(sizes), tuple(meta)) is not None


def kernel_shape(channels: int, dim_in: int, dim_sh: int, coupling: torch.Tensor,
                 paths: list[tuple[int, int, int]]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(sizes, flattened path metadata): what the kernels of one convolution are built for (`available`)."""
    return (channels, len(paths), dim_in, dim_sh, coupling.shape[1]), tuple(path_layout(paths).flatten().tolist())


def _shape(features: torch.Tensor, sh: torch.Tensor, coefficients: torch.Tensor, cutoff: float,
           scale: float) -> _Shape:
    atoms = features.shape[0]
    return _Shape(atoms=atoms, degree=sh.shape[0] // max(atoms, 1), pieces=coefficients.shape[0], cutoff=cutoff,
                  scale=scale)


def _pointer(tensor: torch.Tensor) -> ctypes.c_void_p:
    return ctypes.c_void_p(tensor.data_ptr())


@torch.library.custom_op("mlip::tabulated_convolution", mutates_args=())
def tabulated_convolution(sh: torch.Tensor, lengths: torch.Tensor, filled: torch.Tensor, coefficients: torch.Tensor,
                          features: torch.Tensor, senders: torch.Tensor, coupling: torch.Tensor, meta: torch.Tensor,
                          out_cols: int, cutoff: float, scale: float) -> torch.Tensor:
    """scale · Σ_slots Σ_k L ⊙ R ⊙ x[sender] per receiving atom and path (see the module and the C file)."""
    inputs = [t.contiguous() for t in (sh, lengths, filled, coefficients, features, senders, coupling, meta)]
    sh, lengths, filled, coefficients, features, senders, coupling, meta = inputs
    out = features.new_empty((features.shape[0] * out_cols, features.shape[2]))
    shape = _shape(features, sh, coefficients, cutoff, scale)
    _library_for(features, sh, coupling, meta).tabulated_convolution_forward(ctypes.byref(shape), *map(_pointer, (
        sh, lengths, filled, coefficients, features, senders, coupling, out)), torch.get_num_threads())
    return out


@tabulated_convolution.register_fake
def _(sh, lengths, filled, coefficients, features, senders, coupling, meta, out_cols, cutoff, scale):
    return features.new_empty((features.shape[0] * out_cols, features.shape[2]))


@torch.library.custom_op("mlip::tabulated_convolution_backward", mutates_args=())
def tabulated_convolution_backward(grad: torch.Tensor, sh: torch.Tensor, lengths: torch.Tensor, filled: torch.Tensor,
                                   coefficients: torch.Tensor, features: torch.Tensor, senders: torch.Tensor,
                                   coupling: torch.Tensor, meta: torch.Tensor, cutoff: float,
                                   scale: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per slot: ∂/∂length (N·D,), ∂/∂sh (N·D, dim_sh) and ∂/∂x[sender] (N·D, dim_in, C)."""
    inputs = [t.contiguous() for t in (grad, sh, lengths, filled, coefficients, features, senders, coupling, meta)]
    grad, sh, lengths, filled, coefficients, features, senders, coupling, meta = inputs
    grad_lengths, grad_sh = torch.empty_like(lengths), torch.empty_like(sh)
    grad_slots = features.new_empty((sh.shape[0], *features.shape[1:]))
    shape = _shape(features, sh, coefficients, cutoff, scale)
    _library_for(features, sh, coupling, meta).tabulated_convolution_backward(ctypes.byref(shape), *map(_pointer, (
        grad, sh, lengths, filled, coefficients, features, senders, coupling, grad_lengths, grad_sh, grad_slots)),
        torch.get_num_threads())
    return grad_lengths, grad_sh, grad_slots


@tabulated_convolution_backward.register_fake
def _(grad, sh, lengths, filled, coefficients, features, senders, coupling, meta, cutoff, scale):
    return (torch.empty_like(lengths), torch.empty_like(sh),
            features.new_empty((sh.shape[0], *features.shape[1:])))


def _context(ctx, inputs, output) -> None:
    sh, lengths, filled, coefficients, features, senders, coupling, meta, _, cutoff, scale = inputs
    ctx.save_for_backward(sh, lengths, filled, coefficients, features, senders, coupling, meta)
    ctx.cutoff, ctx.scale = cutoff, scale


def _backward(ctx, grad: torch.Tensor):
    sh, lengths, filled, coefficients, features, senders, coupling, meta = ctx.saved_tensors
    grad_lengths, grad_sh, grad_slots = tabulated_convolution_backward(
        grad, sh, lengths, filled, coefficients, features, senders, coupling, meta, ctx.cutoff, ctx.scale)
    grad_features = _scatter_rows(grad_slots, senders, features.shape[0])   # Σ over the slots each atom sends to
    return grad_sh, grad_lengths, None, None, grad_features, None, None, None, None, None, None


tabulated_convolution.register_autograd(_backward, setup_context=_context)


def path_layout(paths: list[tuple[int, int, int]]) -> torch.Tensor:
    """The kernel's per-path metadata (7, paths) int64: l_in; 2·l3+1; first column of the path's block of the
    coupling (rows 2·l_in+1 × columns 2·l3+1, blocks side by side in path order); and where its outputs go: the
    first column of its group (the paths sharing its l3), the group's columns, its index in the group and the
    group's path count. Each group's outputs are one contiguous (N, 2·l3+1, paths, C) block, so that the channel
    mix (`PathLinear`) reads it as a matrix without a copy. paths: (l_in, l_sh, l3), sorted by l3."""
    l_in, widths = [p[0] for p in paths], [2 * p[2] + 1 for p in paths]
    blocks = [(2 * a + 1) * w for a, w in zip(l_in, widths)]
    left_at = [sum(blocks[:q]) for q in range(len(paths))]
    sharing = [sum(1 for other in paths if other[2] == p[2]) for p in paths]
    group_at = [sum(widths[q] for q in range(len(paths)) if paths[q][2] < p[2]) for p in paths]
    in_group = [sum(1 for q in range(i) if paths[q][2] == p[2]) for i, p in enumerate(paths)]
    group_cols = [n * w for n, w in zip(sharing, widths)]
    return torch.tensor([l_in, widths, left_at, group_at, group_cols, in_group, sharing], dtype=torch.int64)
