"""Row gathers x[index] whose backward, under torch.compile, is ATen's index_add kernel.

Inductor writes the backward of a gather (a scatter-add over rows) as per-element atomic adds
on CPU; for the neighbour-feature and bond-weight gathers of a convolution that one kernel took
8 ms of a 62 ms compiled call at 512 Si atoms. As a custom operator the gather and its scatter
stay opaque to Inductor and run ATen's kernels. Eagerly, and while torch.export traces (an
exported program must load without mlip), `gather_rows` is a plain `index_select`.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

# set while a compiled function differentiates the network inside itself (torch.func.grad, see
# mlip.train.compiled_forces): the custom operators below have no functorch rule, so gathers stay index_select
_INSIDE_FUNCTORCH = False


@contextmanager
def plain_gathers() -> Iterator[None]:
    """Within this block, compiled code traces `gather_rows` as index_select (for torch.func transforms)."""
    global _INSIDE_FUNCTORCH
    previous, _INSIDE_FUNCTORCH = _INSIDE_FUNCTORCH, True
    try:
        yield
    finally:
        _INSIDE_FUNCTORCH = previous


@torch.library.custom_op("mlip::gather_rows", mutates_args=())
def _gather_rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return x.index_select(0, index)


@_gather_rows.register_fake
def _(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return x.new_empty((index.shape[0], *x.shape[1:]))


@torch.library.custom_op("mlip::scatter_rows", mutates_args=())
def _scatter_rows(values: torch.Tensor, index: torch.Tensor, rows: int) -> torch.Tensor:
    return values.new_zeros((rows, *values.shape[1:])).index_add_(0, index, values)


@_scatter_rows.register_fake
def _(values: torch.Tensor, index: torch.Tensor, rows: int) -> torch.Tensor:
    return values.new_empty((rows, *values.shape[1:]))


def _gather_context(ctx, inputs, output) -> None:
    x, index = inputs
    ctx.save_for_backward(index)
    ctx.rows = x.shape[0]


def _gather_backward(ctx, grad: torch.Tensor):
    (index,) = ctx.saved_tensors
    return _scatter_rows(grad, index, ctx.rows), None


def _scatter_context(ctx, inputs, output) -> None:
    ctx.save_for_backward(inputs[1])


def _scatter_backward(ctx, grad: torch.Tensor):
    (index,) = ctx.saved_tensors
    return _gather_rows(grad, index), None, None


_gather_rows.register_autograd(_gather_backward, setup_context=_gather_context)
_scatter_rows.register_autograd(_scatter_backward, setup_context=_scatter_context)


def gather_rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x.index_select(0, index); under torch.compile (not export, not in `plain_gathers`) the custom operator above.

    Shapes: x (R, ...), index (M,) int64 in [0, R) → (M, ...)."""
    exporting = getattr(torch.compiler, "is_exporting", lambda: False)()  # torch >= 2.5
    if torch.compiler.is_compiling() and not exporting and not _INSIDE_FUNCTORCH:
        return _gather_rows(x, index)
    return x.index_select(0, index)
