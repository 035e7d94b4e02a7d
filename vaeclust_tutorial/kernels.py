"""Faster decoder kernels for bf16 on a CPU: the same function and the same parameters, computed otherwise.

Not needed to follow the course: :mod:`~vaeclust_tutorial.models` is the model. Training
switches these on where the committed benchmark shows them winning, bf16 on a CPU
(:func:`fast_kernels_pay`; ``docs/speed.md``). In fp32 the same reports show them slower,
so fp32 runs the plain layers.

* Each stride-2 transposed conv runs as one ordinary 2x2 conv with 4 x C_out channels,
  one per output phase, followed by a depth-to-space shuffle (:func:`subpixel_kernel`):
  oneDNN's transposed-conv path is slow in bf16.
* The last conv (32 -> 1 channel) runs as a 1x1 conv to its 9 tap maps plus a sum of 9
  shifted views (:class:`ShiftSumConv2d`): an ordinary conv with one output channel
  wastes most of the vector unit.

:func:`use_fast_kernels` swaps the class of those layers in place. The classes add no
parameters and no buffers, so the state dict, the optimiser and the checkpoints are
those of the plain model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .models import SameConvTranspose2d

# Sub-pixel taps, per spatial axis: phase a (output 2m + a) and tap t of a 2-wide conv over the
# input padded by one zero in front (tap 0 reads x[m-1], tap 1 reads x[m]) -> index into the
# 3-tap transposed kernel, 3 meaning "no tap" (a zero appended to the kernel).
_SUBPIXEL_TAPS = (2, 0, 3, 1)   # (a=0, t=0), (a=0, t=1), (a=1, t=0), (a=1, t=1)


def subpixel_kernel(weight: torch.Tensor) -> torch.Tensor:
    r"""The 2x2 conv kernel (4 C_out, C_in, 2, 2) equivalent to a 3x3 stride-2 transposed kernel.

    Along one axis the transposed conv (TF 'same': the first 2n of its 2n+1 outputs) is

    .. math:: y_{2m} = w_0\,x_m + w_2\,x_{m-1}, \qquad y_{2m+1} = w_1\,x_m,

    so each output phase a is an ordinary 2-tap conv over x padded with one zero in
    front: taps (w_2, w_0) for a = 0 and (0, w_1) for a = 1. In 2-D the four phases
    (a_h, a_w) are the output channels, ordered (a_h, a_w, c_out).
    ``weight`` is ``nn.ConvTranspose2d``'s (C_in, C_out, 3, 3); the result is differentiable.
    """
    c_in, c_out = weight.shape[:2]
    taps = torch.tensor(_SUBPIXEL_TAPS, device=weight.device)
    padded = F.pad(weight, (0, 1, 0, 1))                            # (C_in, C_out, 4, 4), index 3 is 0
    k = padded.index_select(2, taps).index_select(3, taps)           # (C_in, C_out, a_h*t_h, a_w*t_w)
    k = k.view(c_in, c_out, 2, 2, 2, 2)                              # (C_in, C_out, a_h, t_h, a_w, t_w)
    return k.permute(2, 4, 1, 0, 3, 5).reshape(4 * c_out, c_in, 2, 2)


def depth_to_space(y: torch.Tensor) -> torch.Tensor:
    """(B, 4C, n, n) with channels ordered (a_h, a_w, c) -> (B, C, 2n, 2n), channels_last."""
    b, c4, n, _ = y.shape
    c = c4 // 4
    y = y.permute(0, 2, 3, 1).reshape(b, n, n, 2, 2, c)              # (B, m_h, m_w, a_h, a_w, C)
    return y.permute(0, 1, 3, 2, 4, 5).reshape(b, 2 * n, 2 * n, c).permute(0, 3, 1, 2)


class SubpixelConvTranspose2d(SameConvTranspose2d):
    """:class:`~vaeclust_tutorial.models.SameConvTranspose2d` computed as :func:`subpixel_kernel`
    conv + :func:`depth_to_space`: same parameters, same function."""

    def forward(self, x):
        y = F.conv2d(F.pad(x, (1, 0, 1, 0)), subpixel_kernel(self.weight), self.bias.repeat(4))
        return depth_to_space(y)


class _ShiftSum(torch.autograd.Function):
    """t (B, 9C, H+2, W+2), channels (tap, c) -> y (B, C, H, W) = sum over taps of shifted t.

    The sum is accumulated in fp32 at least (fp64 stays fp64): a bf16 t gives an fp32 y.
    """

    @staticmethod
    def forward(ctx, t):
        b, c9, hp, wp = t.shape
        c, h, w = c9 // 9, hp - 2, wp - 2
        ctx.shape = t.shape
        y = t[:, 0:c, 0:h, 0:w].to(torch.promote_types(t.dtype, torch.float32))
        for k in range(1, 9):
            p, q = divmod(k, 3)
            y = y + t[:, k * c:(k + 1) * c, p:p + h, q:q + w]
        return y

    @staticmethod
    def backward(ctx, grad):
        b, c9, hp, wp = ctx.shape
        c, h, w = c9 // 9, hp - 2, wp - 2
        out = grad.new_zeros(b, hp, wp, c9).permute(0, 3, 1, 2)      # channels_last, like t
        for k in range(9):
            p, q = divmod(k, 3)
            out[:, k * c:(k + 1) * c, p:p + h, q:q + w] = grad
        return out


class ShiftSumConv2d(nn.Conv2d):
    r"""A 3x3 stride-1 'same' ``nn.Conv2d`` with few output channels, computed as shifted tap maps:

    .. math:: y_{ij} = b + \sum_{p,q} w_{pq}^\top x_{i+p-1,\,j+q-1}
                     = b + \sum_{p,q} t^{(pq)}_{i+p-1,\,j+q-1}, \qquad t^{(pq)} = w_{pq}^\top x

    The nine tap maps t are one 1x1 conv (C_in -> 9 C_out); the sum of shifted views is cheap.
    The output is fp32 (the sum is accumulated in fp32 under bf16 autocast too).
    """

    def forward(self, x):
        c_out, c_in = self.weight.shape[:2]
        taps = self.weight.permute(2, 3, 0, 1).reshape(9 * c_out, c_in, 1, 1)   # (tap, c_out) x c_in
        t = F.pad(F.conv2d(x, taps), (1, 1, 1, 1))                             # (B, 9 C_out, H+2, W+2)
        y = _ShiftSum.apply(t)
        return y + self.bias.view(1, -1, 1, 1).to(y.dtype)


def _shift_sum_fits(m: nn.Module) -> bool:
    return (type(m) is nn.Conv2d and m.kernel_size == (3, 3) and m.stride == (1, 1)
            and m.padding == (1, 1) and m.groups == 1 and m.bias is not None and m.out_channels <= 4)


def use_fast_kernels(model: nn.Module) -> nn.Module:
    """Switch the decoder's stride-2 transposed convs and its last conv to the kernels above, in place.

    Parameters, their names and the state dict do not change. Returns ``model``.
    """
    for m in model.modules():
        if type(m) is SameConvTranspose2d:
            m.__class__ = SubpixelConvTranspose2d
        elif _shift_sum_fits(m):
            m.__class__ = ShiftSumConv2d
    return model


def fast_kernels_pay(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether training uses :func:`use_fast_kernels`: bf16 on a CPU, where the benchmark
    measures them faster (``docs/speed.md``); elsewhere the plain layers are as fast or faster."""
    return device.type == "cpu" and dtype == torch.bfloat16
