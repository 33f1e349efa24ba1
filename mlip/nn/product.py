"""Many-body features: channel-wise products of the neighbour sum with itself (MACE-style body order)."""

from __future__ import annotations

import torch
from torch import nn

from mlip.nn import fused_product
from mlip.nn.gaunt import GauntProduct
from mlip.nn.irreps import coupling_paths, coupling_tensor, path_groups
from mlip.nn.linear import PathLinear
from mlip.nn.sparse_bilinear import SparseBilinearTerms, sparse_bilinear


def sparse_terms(coupling: torch.Tensor, symmetric: bool) -> tuple[torch.Tensor, ...]:
    """The non-zero entries of a coupling tensor (dim1, dim2, columns) as index lists first,
    second, column (int64) and values (float64); `symmetric` folds (j, i) onto (i, j), i ≤ j."""
    first, second, column = (coupling.abs() > 1e-12).nonzero(as_tuple=True)
    value = coupling[first, second, column]
    if symmetric:
        first, second = torch.minimum(first, second), torch.maximum(first, second)
        dim2, columns = coupling.shape[1], coupling.shape[2]
        keys, slot = ((first * dim2 + second) * columns + column).unique(return_inverse=True)
        value = torch.zeros(len(keys), dtype=value.dtype).index_add_(0, slot, value)
        first, second, column = keys // (dim2 * columns), keys // columns % dim2, keys % columns
    return first, second, column, value


def _sparse_sum_unrolled(x_rows: torch.Tensor, y_rows: torch.Tensor,
                         terms_by_column: list[list[tuple[int, int, float]]]) -> torch.Tensor:
    """out[k] = Σ_t value_t · x_rows[first_t] · y_rows[second_t] written out term by term (one row
    product per term, the coefficients as constants), for torch.compile: Inductor fuses it into kernels
    along the M rows. A gather-multiply-scatter form it vectorises across the terms instead (strided
    gathers: inside the graph that product's backward alone took 39 ms of a 160 ms compiled call at
    512 Si atoms, eager call 100 ms). Shapes: x_rows (dim1, M), y_rows (dim2, M) → (columns, M);
    terms_by_column[k]: (first, second, value) of column k."""
    xs = x_rows.unbind(0)
    ys = xs if y_rows is x_rows else y_rows.unbind(0)
    columns = []
    for terms in terms_by_column:
        total = torch.zeros_like(xs[0])
        for i, j, value in terms:
            total = total + value * (xs[i] * ys[j])
        columns.append(total)
    return torch.stack(columns)


class ChannelwiseProduct(nn.Module):
    """x ⊗ y channel by channel ("uuu"), every pair (l1, l2) → l3 ≤ `lmax_out` of natural parity,
    then the paths of each l3 mixed into C channels (`PathLinear`): one copy of every l3.

    With `num_species` each path and channel is first scaled by a weight of the atom's element
    (MACE's element-dependent contraction); without, such weights would be absorbed by the mix.
    Sparse: the Clebsch-Gordan tensor of all paths is ~1.5 % non-zero, so the product is a sum
    over its non-zero terms c·x_i·y_j → column k, one fused multiply-add of rows of N·C per term
    (`mlip.nn.sparse_bilinear`; 2–3.7× faster than gathers, a multiply and an index_add over
    (terms, N·C), which were 1.4–2.5× faster than the dense outer-product matmul). `symmetric=True`
    (x is y) keeps only l1 ≤ l2 and folds x_i x_j with x_j x_i. Exact. In compiled float32 CPU inference
    (`compile_potential`, `fused_kernel`) the products run as one hand-fused C kernel (`mlip.nn.fused_product`).

    Shapes: x (N, C, (lmax1+1)²), y (N, C, (lmax2+1)²) channel layout, species_onehot (N, S)
            → (N, C, (lmax_out+1)²) channel layout.
    """

    def __init__(self, channels: int, lmax1: int, lmax2: int, lmax_out: int, symmetric: bool = False,
                 num_species: int | None = None):
        super().__init__()
        self.paths = coupling_paths(lmax1, lmax2, lmax_out, symmetric)
        coupling, _ = coupling_tensor(self.paths, lmax1, lmax2)
        first, second, column, value = sparse_terms(coupling, symmetric)
        self.columns = coupling.shape[-1]
        self.num_terms = first.numel()
        self.terms = SparseBilinearTerms(list(zip(first.tolist(), second.tolist(), column.tolist(), value.tolist())),
                                         self.columns, coupling.shape[0], coupling.shape[1])
        self.terms_by_column: list[list[tuple[int, int, float]]] = [[] for _ in range(self.columns)]
        for i, j, k, v in zip(first.tolist(), second.tolist(), column.tolist(), value.tolist()):
            self.terms_by_column[k].append((i, j, v))
        self.groups = path_groups(self.paths)
        self.per_species = num_species is not None
        if self.per_species:
            self.weights = nn.Parameter(torch.randn(num_species, channels, len(self.paths)))
        self.mix = PathLinear(channels, channels, [n for _, _, n, _ in self.groups])
        self.kernel_shape = fused_product.kernel_shape(channels, coupling.shape[0], coupling.shape[1],
                                                       list(zip(first.tolist(), second.tolist(), column.tolist(),
                                                                value.tolist())), self.groups)
        self.kernel_key = fused_product.register(self.kernel_shape)
        self.fused_kernel = False  # set on compiled copies (`compile_potential`): the product by the C kernel

    def contract(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Σ_ij C_ijk x_i y_j channel by channel, every path's columns: (N, C, ·) × 2 → (columns, N·C)."""
        n, c = x.shape[0], x.shape[1]
        # component-major copies (dim, N·C), so that the gathers and their backward scatters move whole
        # rows (gathering from the strided transpose: 2–4 % slower calls and training steps, measured in-model)
        x_rows = x.reshape(n * c, -1).t().contiguous()
        y_rows = x_rows if y is x else y.reshape(n * c, -1).t().contiguous()
        if torch.compiler.is_compiling() or getattr(torch.compiler, "is_exporting", lambda: False)():
            return _sparse_sum_unrolled(x_rows, y_rows, self.terms_by_column)
        return sparse_bilinear(x_rows, y_rows, self.terms)

    def forward(self, x: torch.Tensor, y: torch.Tensor, species_onehot: torch.Tensor | None = None) -> torch.Tensor:
        n, c = x.shape[0], x.shape[1]
        if self._runs_fused_kernel(x):
            return self._fused_forward(x, y, species_onehot)
        # columns are grouped by l3 (paths, then components): split into contiguous (paths, 2l3+1, N, C)
        # blocks, not sliced per group (a slice's backward fills a full-size zero tensor)
        parts = self.contract(x, y).split([num_paths * (2 * l3 + 1) for l3, _, num_paths, _ in self.groups], dim=0)
        if self.per_species:
            weights = (species_onehot @ self.weights.reshape(self.weights.shape[0], -1)).reshape(n, c, -1).permute(2, 0, 1)
        groups = []
        for (l3, first, num_paths, _), part in zip(self.groups, parts):
            part = part.reshape(num_paths, 2 * l3 + 1, n, c)
            if self.per_species:
                part = part * weights[first:first + num_paths, None]                     # (paths, 1, N, C) weights
            groups.append(part.permute(2, 3, 0, 1))                                     # (N, C, paths, 2l3+1) view
        return self.mix(groups)


    def _runs_fused_kernel(self, x: torch.Tensor) -> bool:
        """The C kernel runs for compiled float32 CPU calls of a copy marked `fused_kernel` with frozen weights
        (its backward pass has no derivatives of its own: forces and stress only, not force training)."""
        frozen_weights = not any(parameter.requires_grad for parameter in self.parameters())
        return (self.fused_kernel and frozen_weights and x.dtype == torch.float32 and x.device.type == "cpu"
                and torch.compiler.is_compiling() and fused_product.available(self.kernel_shape))

    def _fused_forward(self, x: torch.Tensor, y: torch.Tensor, species_onehot: torch.Tensor | None) -> torch.Tensor:
        """`forward` by the fused kernel: the product in the channel mix's layout, scaled per species, mixed."""
        n, c = x.shape[0], x.shape[1]
        x_rows = x.transpose(1, 2).contiguous()                                          # (N, dim1, C)
        y_rows = x_rows if y is x else y.transpose(1, 2).contiguous()
        out = fused_product.channelwise_product(x_rows, y_rows, self.kernel_key, self.columns)   # (N·columns, C)
        if self.per_species:
            weights = (species_onehot @ self.weights.reshape(self.weights.shape[0], -1)).reshape(n, c, -1)
        groups = []
        for (l3, first, num_paths, _), block in zip(self.groups, out.split(
                [n * num_paths * (2 * l3 + 1) for l3, _, num_paths, _ in self.groups])):
            block = block.reshape(n, 2 * l3 + 1, num_paths, c)
            if self.per_species:
                block = block * weights[:, :, first:first + num_paths].transpose(1, 2).unsqueeze(1)
            groups.append(block.permute(0, 3, 2, 1))                                    # (N, C, paths, 2l3+1) view
        return self.mix(groups)


class ProductBasis(nn.Module):
    """B = Linear([A, P₂, P₃, ...]) with P₂ = W₂(A ⊗ A), P_ν = W_ν(P_{ν−1} ⊗ A), ν ≤ `correlation`.

    A is a sum over neighbours (two-body per atom), so a product of ν copies carries
    (ν+1)-body information, as in MACE's symmetric contraction (Batatia et al. 2022). Each ⊗
    is a channel-wise ("uuu") tensor product coupling every pair of l within a channel, and
    W_ν maps its paths back to one copy of each l (`ChannelwiseProduct`). Exact.

    A may carry higher l than the output (l ≤ 3 from l = 3 edge harmonics, output l ≤ 1, as
    MACE's max_ell 3 / max_L 1): intermediate products keep every l of A, the last one only
    the output's. With `species_weights` the path weights of every product depend on the
    element of the atom (as MACE's contraction weights do). `product="gaunt"` computes each ⊗
    on a sphere grid instead (`GauntProduct`: the same paths, with per-degree rather than
    per-path weights; cheaper where the output keeps l ≥ 1, dearer for a contraction to scalars:
    `benchmarks.product_speed`), except a product to scalars only, which stays the sparse sum.

    Shapes: a (N, C, (lmax_in+1)²) channel layout, species_onehot (N, S) → (N, C, (lmax_out+1)²).
    """

    def __init__(self, channels: int, lmax_in: int, lmax_out: int, correlation: int = 3, num_species: int = 1,
                 species_weights: bool = False, product: str = "tensor"):
        super().__init__()
        if correlation < 1:
            raise ValueError(f"correlation must be >= 1, got {correlation}")
        if lmax_out > lmax_in:
            raise ValueError(f"the product's output l ({lmax_out}) cannot exceed its input's ({lmax_in})")
        if product not in ("tensor", "gaunt"):
            raise ValueError(f"product must be 'tensor' (channel-wise Clebsch-Gordan) or 'gaunt' (sphere grid), "
                             f"got '{product}'")
        self.lmax_out = lmax_out
        species = num_species if species_weights else None
        products = []
        for order in range(2, correlation + 1):
            target = lmax_out if order == correlation else lmax_in
            if product == "gaunt" and target > 0:  # a contraction to scalars stays sparse: 9 terms at l ≤ 2
                products.append(GauntProduct(channels, lmax_in, lmax_in, target, species))
            else:
                products.append(ChannelwiseProduct(channels, lmax_in, lmax_in, target, symmetric=order == 2,
                                                   num_species=species))
        self.products = nn.ModuleList(products)
        self.linear = PathLinear(channels, channels, [correlation] * (lmax_out + 1))

    def forward(self, a: torch.Tensor, species_onehot: torch.Tensor | None = None) -> torch.Tensor:
        width = (self.lmax_out + 1) ** 2
        features, current = [a[:, :, :width]], a
        for product in self.products:
            current = product(current, a, species_onehot)
            features.append(current[:, :, :width])
        stacked = torch.stack(features, dim=2)  # (N, C, correlation, (lmax_out+1)²): one copy per body order
        return self.linear([stacked[..., l * l:(l + 1) ** 2] for l in range(self.lmax_out + 1)])
