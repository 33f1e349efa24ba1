"""The product basis's channel-wise Clebsch-Gordan products as one hand-fused CPU kernel (float32, inference).

Under torch.compile the four products of the medium model's two product bases took a quarter of a Si 512
energy + forces call (benchmarks/README.md "The fused kernels"): Inductor writes the per-term rows of all atoms
between its kernels, and the unbind/stack around them. `kernels/channelwise_product.c` applies every term of one
atom at once with its inputs and outputs in L1, and writes the outputs in the layout the channel mix reads
(one (N, 2·l3+1, paths, C) block per l3). Its terms and layout are compile-time constants of a build per product
shape (`mlip.nn.kernels.build`). First derivatives only (forces and stress of a model with frozen weights).

Shapes (`channelwise_product`): x (N, dim1, C), y (N, dim2, C) component-major → (N·columns, C).
"""

from __future__ import annotations

import ctypes
from functools import lru_cache

import torch

from mlip.nn.kernels.build import build

SOURCE = "channelwise_product.c"


def kernel_shape(channels: int, dim1: int, dim2: int, terms: list[tuple[int, int, int, float]],
                 groups: list[tuple[int, int, int, int]]) -> tuple:
    """What one product's kernel is built for: (channels, dim1, dim2, terms (i, j, k, v), output rows per column
    (block start, rows per atom, row in the atom's block)). groups: `path_groups` of the product's paths, whose
    columns are (paths, 2·l3+1) per l3, in order."""
    base, rows = [], []
    start = 0
    for l3, _, paths, _ in groups:
        width = 2 * l3 + 1
        for column in range(paths * width):
            path, component = divmod(column, width)
            base.append(start)
            rows.append((paths * width, component * paths + path))
        start += paths * width
    layout = tuple((b, per_atom, row) for b, (per_atom, row) in zip(base, rows))
    return channels, dim1, dim2, tuple(terms), layout


@lru_cache(maxsize=None)
def _library(shape: tuple) -> ctypes.CDLL | None:
    channels, dim1, dim2, terms, layout = shape
    defines = (("CHANNELS", str(channels)), ("DIM1", str(dim1)), ("DIM2", str(dim2)),
               ("COLUMNS", str(len(layout))), ("TERM_COUNT", str(len(terms))),
               ("TERMS", ",".join(f"{{{i},{j},{k},{v:.9e}f}}" for i, j, k, v in terms)),
               ("BASE_OF", ",".join(str(b) for b, _, _ in layout)),
               ("GROUP_ROWS_OF", ",".join(str(r) for _, r, _ in layout)),
               ("ROW_OF", ",".join(str(r) for _, _, r in layout)))
    library = build(SOURCE, defines)
    if library is not None:
        pointer = ctypes.c_void_p
        library.channelwise_product_forward.argtypes = [ctypes.c_int64] + [pointer] * 3 + [ctypes.c_int]
        library.channelwise_product_backward.argtypes = [ctypes.c_int64] + [pointer] * 5 + [ctypes.c_int]
    return library


@torch.compiler.assume_constant_result
def available(shape: tuple) -> bool:
    """Whether this product's kernel is built and loadable here (builds it on first call; a constant to
    torch.compile, so a compiled graph keeps the framework path where the build fails)."""
    return _library(shape) is not None


_SHAPES: dict[int, tuple] = {}  # the custom operator takes an int key; the shape tuples are registered here


def register(shape: tuple) -> int:
    """A key for `shape` that the operator accepts (operators take numbers and tensors, not nested tuples)."""
    key = hash(shape)
    _SHAPES[key] = shape
    return key


def _pointer(tensor: torch.Tensor) -> ctypes.c_void_p:
    return ctypes.c_void_p(tensor.data_ptr())


@torch.library.custom_op("mlip::channelwise_product", mutates_args=())
def channelwise_product(x: torch.Tensor, y: torch.Tensor, key: int, columns: int) -> torch.Tensor:
    """Σ_terms v · x[:, i] ⊙ y[:, j] → column k, per atom, in the channel mix's block layout (module docstring)."""
    x, y = x.contiguous(), y.contiguous()
    out = x.new_empty((x.shape[0] * columns, x.shape[2]))
    _library(_SHAPES[key]).channelwise_product_forward(x.shape[0], _pointer(x), _pointer(y), _pointer(out),
                                                       torch.get_num_threads())
    return out


@channelwise_product.register_fake
def _(x, y, key, columns):
    return x.new_empty((x.shape[0] * columns, x.shape[2]))


@torch.library.custom_op("mlip::channelwise_product_backward", mutates_args=())
def channelwise_product_backward(grad: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                                 key: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(∂/∂x, ∂/∂y) of `channelwise_product` for the output gradient `grad` (its shape)."""
    grad, x, y = grad.contiguous(), x.contiguous(), y.contiguous()
    grad_x, grad_y = torch.empty_like(x), torch.empty_like(y)
    _library(_SHAPES[key]).channelwise_product_backward(x.shape[0], *map(_pointer, (grad, x, y, grad_x, grad_y)),
                                                        torch.get_num_threads())
    return grad_x, grad_y


@channelwise_product_backward.register_fake
def _(grad, x, y, key):
    return torch.empty_like(x), torch.empty_like(y)


def _context(ctx, inputs, output) -> None:
    x, y, key, _ = inputs
    ctx.save_for_backward(x, y)
    ctx.key = key


def _backward(ctx, grad: torch.Tensor):
    x, y = ctx.saved_tensors
    grad_x, grad_y = channelwise_product_backward(grad, x, y, ctx.key)
    return grad_x, grad_y, None, None


channelwise_product.register_autograd(_backward, setup_context=_context)
