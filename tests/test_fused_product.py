"""The hand-fused C kernel of the channel-wise product (`mlip.nn.fused_product`): the same products, per-species
scaling, channel mix and first derivatives as the framework's path, in float32, symmetric or not."""

from __future__ import annotations

import pytest
import torch

from mlip.nn import fused_product
from mlip.nn.product import ChannelwiseProduct


@pytest.mark.parametrize("lmax1,lmax2,lmax_out,symmetric,species", [(3, 3, 3, True, 3), (3, 3, 1, False, 3),
                                                                     (2, 2, 0, False, None), (1, 2, 2, False, 2)])
def test_fused_product_gives_the_framework_values_and_gradients(lmax1, lmax2, lmax_out, symmetric, species):
    torch.manual_seed(0)
    product = ChannelwiseProduct(8, lmax1, lmax2, lmax_out, symmetric=symmetric, num_species=species)
    if not fused_product.available(product.kernel_shape):
        pytest.skip("no C compiler to build the fused kernel")
    onehot = torch.nn.functional.one_hot(torch.arange(11) % (species or 1), species or 1).float()

    def run(kernel: bool):
        x = torch.randn(11, 8, (lmax1 + 1) ** 2, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
        y = x if symmetric else torch.randn(11, 8, (lmax2 + 1) ** 2,
                                            generator=torch.Generator().manual_seed(2)).requires_grad_(True)
        out = product._fused_forward(x, y, onehot) if kernel else product(x, y, onehot)
        total = (out * torch.linspace(0.5, 1.5, out.numel()).reshape(out.shape)).sum()
        return out, torch.autograd.grad(total, [x] if symmetric else [x, y])

    expected, expected_grads = run(kernel=False)
    out, grads = run(kernel=True)
    torch.testing.assert_close(out, expected, rtol=0, atol=2e-6 * expected.abs().max().item())
    for a, b in zip(grads, expected_grads):
        torch.testing.assert_close(a, b, rtol=0, atol=2e-6 * b.abs().max().item())


def test_fused_product_operator_is_registered_for_the_compiler():
    product = ChannelwiseProduct(4, 2, 2, 1)
    if not fused_product.available(product.kernel_shape):
        pytest.skip("no C compiler to build the fused kernel")
    x, y = torch.randn(5, 9, 4, requires_grad=True), torch.randn(5, 9, 4, requires_grad=True)
    torch.library.opcheck(fused_product.channelwise_product, (x, y, product.kernel_key, product.columns),
                          test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))
