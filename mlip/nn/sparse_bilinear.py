"""A sparse bilinear map of row stacks, out[k] = Σ_t v_t · a[i_t] ⊙ b[j_t], evaluated row by row.

The channel-wise Clebsch-Gordan products of the product basis are such maps with a few hundred
non-zero terms (`mlip.nn.product`). Written with gathers, a product and an `index_add`, every
term's rows are first copied into (terms, M) tensors, and autograd saves and differentiates those
copies (three passes in a training step with a force loss). Here each term is one fused
multiply-add of two input rows into an output row (`addcmul_`), so nothing of size (terms, M) is
ever stored, and the gradients are sparse bilinear maps of the same kind (the terms re-indexed),
so derivatives of every order stay exact and cost what the forward does. Each term is one call,
~2 µs of dispatch, so narrow rows keep the gather form: measured (the medium model's largest
product, 194 terms, 16 → 59 rows, forward and backward) the row form wins from M ≈ 1,600 per
thread (one thread: 1.9 against 2.9 ms at M = 3,360, 5 aspirin molecules × 32 channels; two
threads: 4.7 against 10.9 ms at M = 16,384, 512 atoms) and loses below (0.37 against 1.3 ms at
M = 672, one aspirin molecule, two threads): `ROW_FORM_MIN_WIDTH` per thread.

Eager only: under torch.compile Inductor fuses the term-by-term form itself (`mlip.nn.product`).
"""

from __future__ import annotations

from functools import cached_property

import torch

# row width M per torch thread from which the term-by-term row form beats the gather form (measured above)
ROW_FORM_MIN_WIDTH = 1600


class SparseBilinearTerms:
    """The terms (i, j, k, v) of out[k] += v · a[i] ⊙ b[j], with `rows` output rows (k < rows).

    `wrt_first` / `wrt_second` are the terms of the gradients with respect to a and b, as maps of
    (grad_out, b) and (grad_out, a): themselves `SparseBilinearTerms` (built once, on first use)."""

    def __init__(self, terms: list[tuple[int, int, int, float]], rows: int, first_rows: int, second_rows: int):
        self.terms = sorted(terms, key=lambda term: (term[2], term[0], term[1]))  # output rows in order
        self.rows, self.first_rows, self.second_rows = rows, first_rows, second_rows
        self._indices: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, ...]] = {}

    def indices(self, like: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(i, j, k) int64 (T,) and v (T, 1) as tensors on `like`'s device and dtype (cached)."""
        key = (like.device, like.dtype)
        if key not in self._indices:
            i, j, k, v = zip(*self.terms) if self.terms else ((), (), (), ())
            self._indices[key] = (*(torch.tensor(index, dtype=torch.long, device=like.device) for index in (i, j, k)),
                                  torch.tensor(v, dtype=like.dtype, device=like.device).reshape(-1, 1))
        return self._indices[key]

    @cached_property
    def wrt_first(self) -> "SparseBilinearTerms":
        """∂L/∂a[i] = Σ_t v_t · g[k_t] ⊙ b[j_t]: a map of (g, b) onto a's rows."""
        return SparseBilinearTerms([(k, j, i, v) for i, j, k, v in self.terms], self.first_rows, self.rows,
                                   self.second_rows)

    @cached_property
    def wrt_second(self) -> "SparseBilinearTerms":
        """∂L/∂b[j] = Σ_t v_t · g[k_t] ⊙ a[i_t]: a map of (g, a) onto b's rows."""
        return SparseBilinearTerms([(k, i, j, v) for i, j, k, v in self.terms], self.second_rows, self.rows,
                                   self.first_rows)

    def evaluate(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The map without autograd: a (first_rows, M), b (second_rows, M) → (rows, M)."""
        out = a.new_zeros(self.rows, a.shape[1])
        a_rows, b_rows, out_rows = a.unbind(0), b.unbind(0), out.unbind(0)
        for i, j, k, v in self.terms:
            out_rows[k].addcmul_(a_rows[i], b_rows[j], value=v)
        return out


class _SparseBilinear(torch.autograd.Function):
    # forward and setup_context apart: the form torch.func's transforms (grad, vjp) accept
    @staticmethod
    def forward(a: torch.Tensor, b: torch.Tensor, terms: SparseBilinearTerms) -> torch.Tensor:
        return terms.evaluate(a.contiguous(), b.contiguous())

    @staticmethod
    def setup_context(ctx, inputs: tuple, output: torch.Tensor) -> None:
        a, b, terms = inputs
        ctx.save_for_backward(a, b)
        ctx.terms = terms

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        a, b = ctx.saved_tensors
        terms: SparseBilinearTerms = ctx.terms
        grad_a = sparse_bilinear(grad, b, terms.wrt_first) if ctx.needs_input_grad[0] else None
        grad_b = sparse_bilinear(grad, a, terms.wrt_second) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b, None


def sparse_bilinear(a: torch.Tensor, b: torch.Tensor, terms: SparseBilinearTerms) -> torch.Tensor:
    """out[k] = Σ_t v_t · a[i_t] ⊙ b[j_t], differentiable to any order in a and b (a may be b): row by
    row on a CPU where rows are wide (M ≥ `ROW_FORM_MIN_WIDTH` per thread), else by gathers and an
    index_add (on a GPU always: one kernel each instead of one launch per term).

    Shapes: a (terms.first_rows, M), b (terms.second_rows, M) → (terms.rows, M)."""
    if a.device.type == "cpu" and a.shape[1] >= ROW_FORM_MIN_WIDTH * torch.get_num_threads():
        return _SparseBilinear.apply(a, b, terms)
    first, second, column, value = terms.indices(a)
    products = a.index_select(0, first) * b.index_select(0, second) * value
    return products.new_zeros(terms.rows, a.shape[1]).index_add_(0, column, products)
