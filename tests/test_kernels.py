"""The fast decoder kernels compute the plain layers' function, with the plain layers' parameters."""

import pytest
import torch

from vaeclust_tutorial import checkpoint
from vaeclust_tutorial.kernels import (ShiftSumConv2d, SubpixelConvTranspose2d, _ShiftSum, fast_kernels_pay,
                                       use_fast_kernels)
from vaeclust_tutorial.models import SameConvTranspose2d, conv_cluster_vae


def _grads(module, x):
    """Output and gradients (input, weight, bias) for a fixed random output weighting."""
    x = x.clone().requires_grad_(True)
    y = module(x)
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=y.dtype)
    return (y, *torch.autograd.grad((y * g).sum(), (x, module.weight, module.bias)))


@pytest.mark.parametrize("c_in, c_out, n", [(3, 2, 5), (4, 4, 7)])
def test_subpixel_transposed_conv_is_the_transposed_conv(c_in, c_out, n):
    """Same output and same gradients (input, weight, bias) as the transposed conv itself, in fp64."""
    plain = SameConvTranspose2d(c_in, c_out).double()
    fast = SubpixelConvTranspose2d(c_in, c_out).double()
    fast.load_state_dict(plain.state_dict())
    x = torch.randn(2, c_in, n, n, dtype=torch.double)
    for a, b in zip(_grads(plain, x), _grads(fast, x)):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)
    assert fast(x).shape == (2, c_out, 2 * n, 2 * n)
    y = fast(x.contiguous(memory_format=torch.channels_last))
    assert y.is_contiguous(memory_format=torch.channels_last)


def test_shift_sum_conv_is_the_conv():
    conv = torch.nn.Conv2d(5, 2, 3, padding=1).double()
    fast = ShiftSumConv2d(5, 2, 3, padding=1).double()
    fast.load_state_dict(conv.state_dict())
    x = torch.randn(3, 5, 6, 8, dtype=torch.double)
    for a, b in zip(_grads(conv, x), _grads(fast, x)):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)
    t = torch.randn(2, 18, 5, 6, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(_ShiftSum.apply, (t,))


def test_shift_sum_conv_accumulates_bf16_in_fp32():
    fast = ShiftSumConv2d(32, 1, 3, padding=1)
    x = torch.rand(2, 32, 28, 28)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = fast(x)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, fast(x), atol=0.05, rtol=0.02)


@pytest.mark.parametrize("name", ["article-a", "article-b"])
def test_use_fast_kernels_keeps_the_parameters_and_the_function(name):
    plain = conv_cluster_vae(name).double()
    fast = conv_cluster_vae(name).double()
    fast.load_state_dict(plain.state_dict())
    params = [id(p) for p in fast.parameters()]
    assert use_fast_kernels(fast) is fast
    kinds = [type(m) for m in fast.decoder.modules()]
    assert kinds.count(SubpixelConvTranspose2d) == 2 and kinds.count(ShiftSumConv2d) == 1
    assert not any(isinstance(m, (SubpixelConvTranspose2d, ShiftSumConv2d)) for m in fast.encoder.modules())
    assert [id(p) for p in fast.parameters()] == params            # an optimiser built before still holds them
    assert fast.state_dict().keys() == plain.state_dict().keys()
    x = torch.rand(2, 1, 28, 28, dtype=torch.double)
    z = plain.encoder(x)[0]
    torch.testing.assert_close(fast.decoder(z), plain.decoder(z), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("key", [k for k in checkpoint.SHIPPED if checkpoint.shipped_path(*k).exists()], ids=str)
def test_a_shipped_checkpoint_loads_into_both_forms(key):
    state = checkpoint.load(checkpoint.shipped_path(*key))
    fast = use_fast_kernels(conv_cluster_vae(state["config"].network))
    fast.load_state_dict(state["model"])                          # strict: the same names and shapes


def test_fast_kernels_are_used_for_bf16_on_a_cpu_only():
    assert fast_kernels_pay(torch.device("cpu"), torch.bfloat16)
    assert not fast_kernels_pay(torch.device("cpu"), torch.float32)
    assert not fast_kernels_pay(torch.device("cuda"), torch.bfloat16)
