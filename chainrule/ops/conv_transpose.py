"""The transposed convolution ``conv_transpose2d`` (sometimes called "deconvolution").

It is the adjoint of ``conv2d`` with the same weight: where a convolution reads a
window of the input for every output pixel, the transposed convolution adds every
input pixel, times the kernel, onto a window of its output. So it *is* the gradient
of a convolution with respect to its input, computed by the same code
(``Conv2dInputGrad`` in ``conv.py``), and its own gradients are a convolution (for x)
and a convolution's weight gradient (for W); double backward works the same way.

Shapes, as in PyTorch: x is (N, C_in, H, W), the weight (C_in, C_out/groups, kh, kw)
(the layout of the convolution it transposes, whose input has C_out channels), the
output (N, C_out, OH, OW) with
    OH = (H - 1)·stride - 2·padding + dilation·(kh - 1) + output_padding + 1,
the size of the input a convolution with these settings maps to H·W;
``output_padding`` picks one of the sizes that map there when the stride is > 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.ops.conv import (
    Conv2d,
    Conv2dInputGrad,
    Conv2dWeightGrad,
    Pair,
    Window,
    _check_images,
    _pair,
)
from chainrule.ops.padding import pad
from chainrule.tensor import Function, Tensor, as_tensor

__all__ = ["conv_transpose2d", "conv_transpose_output_size"]


class ConvTranspose2d(Function):
    """y = Wᵀ ⋆ x + b: the gradient of conv2d(·, W) with respect to its input, applied
    to x (col2im(Wᵀ·x)), plus the bias per output channel."""

    rule = "dx = conv2d(g, W), dW = conv2d's weight gradient with g as its input and " \
           "x as its output's gradient, db = Σ_(n,h,w) g"
    formula = "y = col2im(Wᵀ·x) + b: conv2d's input gradient applied to x, W of shape " \
              "(C_in, C_out/groups, kh, kw)"
    special = "output_padding adds rows and columns at the bottom and right (as torch)"

    def __init__(self, window: Window, groups: int, output_shape: tuple[int, ...]) -> None:
        # the window and groups of the convolution this transposes, whose input has
        # output_shape
        self.window, self.groups, self.output_shape = window, groups, output_shape

    def forward(self, x, weight, bias=None):
        y = Conv2dInputGrad(self.window, self.groups, self.output_shape).forward(x, weight)
        return y if bias is None else y + bias.reshape(-1, 1, 1)

    def backward(self, g):
        x, weight = self.inputs[0], self.inputs[1]
        needs = self.needs_input_grad
        gx = Conv2d(self.window, self.groups)(g, weight) if needs[0] else None
        gw = Conv2dWeightGrad(self.window, self.groups, weight.shape)(g, x) \
            if needs[1] else None
        if len(self.inputs) == 2:
            return gx, gw
        return gx, gw, g.sum(axis=(0, 2, 3)) if needs[2] else None


def conv_transpose_output_size(input_size: tuple[int, int], kernel: Pair, stride: Pair = 1,
                               padding: Pair = 0, output_padding: Pair = 0,
                               dilation: Pair = 1) -> tuple[int, int]:
    """(OH, OW) = (H - 1)·stride - 2·padding + dilation·(k - 1) + output_padding + 1."""
    op = "conv_transpose2d"
    window = Window.make(kernel, stride, padding, dilation, op)
    extra = _pair(output_padding, "output_padding", op, 0)
    return tuple((n - 1) * s - 2 * p + span + e for n, s, p, span, e in
                 zip(input_size, window.stride, window.padding, window.span(), extra))


def conv_transpose2d(x: Any, weight: Any, bias: Any = None, stride: Pair = 1,
                     padding: Pair = 0, output_padding: Pair = 0, groups: int = 1,
                     dilation: Pair = 1) -> Tensor:
    """2-D transposed convolution, as ``torch.nn.functional.conv_transpose2d`` (same
    argument order): the gradient of ``conv2d(·, weight, stride=stride,
    padding=padding, dilation=dilation, groups=groups)`` with respect to its input.

    ``x`` is (N, C_in, H, W), ``weight`` (C_in, C_out/groups, kh, kw), ``bias``
    (C_out,); the output is (N, C_out, OH, OW), OH = (H - 1)·stride - 2·padding +
    dilation·(kh - 1) + output_padding + 1. ``output_padding`` (smaller than the stride
    or the dilation) adds rows and columns at the bottom and right.
    """
    op = "conv_transpose2d"
    weight = as_tensor(weight)
    x = as_tensor(x, like=weight)
    _check_images(x, op)
    if x.dtype.kind != "f" and weight.dtype.kind == "f":
        x = x.astype(weight.dtype)
    elif x.dtype != weight.dtype:
        raise TypeError(f"{op}: the input has dtype {x.dtype} but the weight has "
                        f"{weight.dtype}; convert one of them, e.g. x.astype('{weight.dtype}')")
    if weight.ndim != 4:
        raise ValueError(f"{op}: the weight must have shape (in_channels, "
                         f"out_channels/groups, kh, kw), got {weight.shape}")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    in_channels, out_channels = weight.shape[0], weight.shape[1] * groups
    if in_channels % groups:
        raise ValueError(f"{op}: groups={groups} must divide the weight's {in_channels} "
                         f"input channels (weight {weight.shape})")
    if x.shape[1] != in_channels:
        raise ValueError(f"{op}: the input of shape {x.shape} has {x.shape[1]} channels, but "
                         f"the weight of shape {weight.shape} expects {in_channels} "
                         f"(weight.shape[0]; the layout is (in, out/groups, kh, kw))")
    window = Window.make(weight.shape[2:], stride, padding, dilation, op)
    extra = _pair(output_padding, "output_padding", op, 0)
    if any(e >= max(s, d) for e, s, d in zip(extra, window.stride, window.dilation)):
        raise ValueError(f"{op}: output_padding {extra} must be smaller than the stride "
                         f"{window.stride} or the dilation {window.dilation} (along each "
                         f"axis)")
    size = conv_transpose_output_size(x.shape[2:], window.kernel, window.stride,
                                      window.padding, extra, window.dilation)
    if min(size) < 1:
        raise ValueError(f"{op}: the output would have size {size} for an input of shape "
                         f"{x.shape} (padding {window.padding} removes too much); use less "
                         f"padding")
    # output_padding ≥ stride (allowed when the dilation is larger): the convolution
    # of the output would give more rows than x has; those rows of x are zeros
    more = tuple(e // s for e, s in zip(extra, window.stride))
    if any(more):
        x = pad(x, (0, more[1], 0, more[0]))
    function = ConvTranspose2d(window, int(groups), (x.shape[0], out_channels, *size))
    if bias is None:
        return function(x, weight)
    bias = as_tensor(bias, like=weight)
    if bias.shape != (out_channels,):
        raise ValueError(f"{op}: the bias must have shape ({out_channels},) for a weight of "
                         f"shape {weight.shape} with groups={groups}, got {bias.shape}")
    return function(x, weight, bias)
