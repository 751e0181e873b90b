"""Convolution and pooling layers: ``Conv2d``, ``ConvTranspose2d``, ``MaxPool2d``,
``AvgPool2d``, ``AdaptiveAvgPool2d``.

Thin modules around the functions of the same names in ``chainrule.functional``
(``chainrule/ops/``), which hold the maths (im2col and one matrix product).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import chainrule.functional as F
from chainrule.nn.init import RngLike, get_initializer, make_rng, zeros_
from chainrule.nn.layers import _check_positive
from chainrule.nn.module import Module, Parameter, as_input
from chainrule.ops.conv import Padding, Pair, Window, _pair, conv_padding
from chainrule.ops.conv_transpose import conv_transpose_output_size
from chainrule.tensor import Tensor

__all__ = ["Conv2d", "Convolution", "ConvTranspose2d", "MaxPool2d", "AvgPool2d",
           "AdaptiveAvgPool2d", "Pooling"]


def _check_channels(in_channels: int, out_channels: int, groups: int) -> tuple[int, int, int]:
    """Positive channel counts, and a number of groups that divides both."""
    in_channels = _check_positive("in_channels", in_channels)
    out_channels = _check_positive("out_channels", out_channels)
    groups = _check_positive("groups", groups)
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"groups={groups} must divide both in_channels={in_channels} "
                         f"and out_channels={out_channels}")
    return in_channels, out_channels, groups


def _init_parameters(layer: Module, channels: tuple[int, int], bias: bool,
                     init: str | Callable[..., Any], rng: RngLike, seed: int | None,
                     dtype: Any) -> None:
    """A convolution's weight, of shape ``channels + kernel_size`` and drawn by ``init``
    (which reads a 4-D weight's first two axes as out and in/groups, as PyTorch's
    initialisers do for both kinds of convolution), and its zero bias, or none."""
    layer.weight = Parameter(np.empty((*channels, *layer.kernel_size), dtype=dtype))
    get_initializer(init)(layer.weight, rng=make_rng(rng, seed))
    if bias:
        layer.bias = zeros_(Parameter(np.empty(layer.out_channels, dtype=dtype)))
    else:
        layer.register_parameter("bias", None)


class Conv2d(Module):
    """2-D convolution layer: (N, C_in, H, W) → (N, C_out, OH, OW).

    ``weight`` has shape (out_channels, in_channels/groups, kh, kw) (PyTorch's layout,
    the textbook's (FN, C, FH, FW)) and ``bias`` (out_channels,), starting at zero.
    ``init`` names an initialiser of ``nn.init`` ('he' by default, for ReLU networks:
    std = √(2/fan_in) with fan_in = in_channels/groups·kh·kw; the textbook's
    SimpleConvNet uses 'std', N(0, 0.01²)) or is a callable ``init(weight, rng=...)``.
    ``seed`` (or a Generator ``rng``) makes the initial weights reproducible.

    ``padding`` is an int, a (height, width) pair, a (left, right, top, bottom)
    4-tuple, 'valid' or 'same' (stride 1; see ``chainrule.ops.conv.conv_padding``); ``padding_mode``
    fills the border with zeros (default) or, as ``F.pad`` does, by 'reflect',
    'replicate' or 'circular'.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Pair,
                 stride: Pair = 1, padding: Padding = 0, dilation: Pair = 1, groups: int = 1,
                 bias: bool = True, padding_mode: str = "zeros",
                 init: str | Callable[..., Any] = "he", seed: int | None = None,
                 rng: RngLike = None, dtype: Any = np.float32) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.groups = _check_channels(
            in_channels, out_channels, groups)
        # the same checks and normalisation as F.conv2d, done once here
        window = Window.make(kernel_size, stride, 0, dilation, "Conv2d")
        self.kernel_size, self.stride, self.dilation = window.kernel, window.stride, \
            window.dilation
        # (left, right, top, bottom); kept as given when it is 'same' or 'valid', as a
        # (height, width) pair when the sides are even, as in PyTorch
        self._sides = conv_padding(padding, kernel_size, stride, dilation, "Conv2d")
        left, right, top, bottom = self._sides
        self.padding = padding if isinstance(padding, str) else \
            (top, left) if (left, top) == (right, bottom) else self._sides
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"Conv2d: padding_mode must be one of {PADDING_MODES}, got "
                             f"{padding_mode!r}")
        self.padding_mode = padding_mode
        _init_parameters(self, (self.out_channels, self.in_channels // self.groups),
                         bias, init, rng, seed, dtype)

    def forward(self, x: Any) -> Tensor:
        x, padding = as_input(x, self.weight), self.padding
        if self.padding_mode != "zeros":  # the border copied from the image, then none
            x, padding = F.pad(x, self._sides, PADDING_MODES[self.padding_mode]), 0
        return F.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation,
                        self.groups)

    def extra_repr(self) -> str:
        padding = repr(self.padding) if isinstance(self.padding, str) else self.padding
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={padding}")
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode!r}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + ("" if self.bias is not None else ", bias=False")


Convolution = Conv2d  # the textbook's name for the same layer


class ConvTranspose2d(Module):
    """2-D transposed convolution layer: (N, C_in, H, W) → (N, C_out, OH, OW), with
    OH = (H - 1)·stride - 2·padding + dilation·(kh - 1) + output_padding + 1 (see
    ``F.conv_transpose2d``): the upsampling layer of decoders and GAN generators.

    ``weight`` has PyTorch's layout (in_channels, out_channels/groups, kh, kw), so
    ``load_torch_state_dict`` copies it as it is; ``bias`` (out_channels,) starts at
    zero. ``init`` is as for ``Conv2d``; the fan-in is read from the weight as PyTorch
    does, out_channels/groups·kh·kw. ``forward(x, output_size=(OH, OW))`` chooses the
    output_padding that gives that size, as in PyTorch.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Pair,
                 stride: Pair = 1, padding: Pair = 0, output_padding: Pair = 0,
                 groups: int = 1, bias: bool = True, dilation: Pair = 1,
                 init: str | Callable[..., Any] = "he", seed: int | None = None,
                 rng: RngLike = None, dtype: Any = np.float32) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.groups = _check_channels(
            in_channels, out_channels, groups)
        window = Window.make(kernel_size, stride, padding, dilation, "ConvTranspose2d")
        self.kernel_size, self.stride = window.kernel, window.stride
        self.padding, self.dilation = window.padding, window.dilation
        self.output_padding = _pair(output_padding, "output_padding", "ConvTranspose2d", 0)
        if any(e >= max(s, d) for e, s, d in zip(self.output_padding, self.stride,
                                                 self.dilation)):
            raise ValueError(f"ConvTranspose2d: output_padding {self.output_padding} must be "
                             f"smaller than the stride {self.stride} or the dilation "
                             f"{self.dilation} (along each axis)")
        _init_parameters(self, (self.in_channels, self.out_channels // self.groups),
                         bias, init, rng, seed, dtype)

    def forward(self, x: Any, output_size: Sequence[int] | None = None) -> Tensor:
        x = as_input(x, self.weight)
        extra = self.output_padding
        if output_size is not None:
            extra = self._output_padding_for(x.shape, output_size)
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  extra, self.groups, self.dilation)

    def _output_padding_for(self, shape: tuple[int, ...],
                            output_size: Sequence[int]) -> tuple[int, int]:
        """The output_padding that makes the output (OH, OW) = the last two of
        ``output_size``; any size from the smallest to the smallest + max(stride,
        dilation) - 1 is possible."""
        wanted = tuple(int(n) for n in tuple(output_size)[-2:])
        smallest = conv_transpose_output_size(shape[2:], self.kernel_size, self.stride,
                                              self.padding, 0, self.dilation)
        largest = tuple(n + max(s, d) - 1 for n, s, d in zip(smallest, self.stride,
                                                            self.dilation))
        if len(wanted) != 2 or not all(lo <= n <= hi for n, lo, hi in
                                       zip(wanted, smallest, largest)):
            raise ValueError(f"ConvTranspose2d: requested an output size of "
                             f"{tuple(output_size)}, but for an input of shape {shape} the "
                             f"possible sizes are {smallest} to {largest}")
        return tuple(n - lo for n, lo in zip(wanted, smallest))

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")
        if self.output_padding != (0, 0):
            text += f", output_padding={self.output_padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + ("" if self.bias is not None else ", bias=False")

# Conv2d's padding_mode (PyTorch's names) -> the F.pad mode that fills the border
PADDING_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate",
                 "circular": "circular"}


class _Pool2d(Module):
    """Shared by the pooling layers: they keep the window settings, checked once here."""

    def __init__(self, kernel_size: Pair, stride: Pair | None, padding: Pair,
                 dilation: Pair, ceil_mode: bool) -> None:
        super().__init__()
        name = type(self).__name__
        window = Window.make(kernel_size, kernel_size if stride is None else stride,
                             padding, dilation, name)
        if not isinstance(ceil_mode, (bool, np.bool_)):
            raise TypeError(f"{name}: ceil_mode must be True or False, got {ceil_mode!r}")
        self.kernel_size, self.stride, self.padding = window.kernel, window.stride, \
            window.padding
        self.dilation, self.ceil_mode = window.dilation, bool(ceil_mode)

    def extra_repr(self) -> str:
        text = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        return text + (", ceil_mode=True" if self.ceil_mode else "")


class MaxPool2d(_Pool2d):
    """The maximum of each window (stride defaults to kernel_size), as
    ``torch.nn.MaxPool2d`` (see ``F.max_pool2d`` for dilation, ceil_mode and
    return_indices). Backward: the gradient goes to the window's maximum; on ties, to
    the first one in row-major order (as in PyTorch)."""

    def __init__(self, kernel_size: Pair, stride: Pair | None = None, padding: Pair = 0,
                 dilation: Pair = 1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)
        self.return_indices = bool(return_indices)

    def forward(self, x: Any) -> Tensor | tuple[Tensor, Tensor]:
        return F.max_pool2d(as_input(x), self.kernel_size, self.stride, self.padding,
                            self.dilation, self.ceil_mode, self.return_indices)

    def extra_repr(self) -> str:
        return super().extra_repr() + (", return_indices=True" if self.return_indices else "")


class AvgPool2d(_Pool2d):
    """The mean of each window (stride defaults to kernel_size), as
    ``torch.nn.AvgPool2d``: zero padding counts in the mean unless
    ``count_include_pad=False`` (see ``F.avg_pool2d`` for the divisors, ceil_mode and
    divisor_override). Backward: g/divisor to every pixel of the window."""

    def __init__(self, kernel_size: Pair, stride: Pair | None = None, padding: Pair = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None:
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = divisor_override

    def forward(self, x: Any) -> Tensor:
        return F.avg_pool2d(as_input(x), self.kernel_size, self.stride, self.padding,
                            self.ceil_mode, self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        text = super().extra_repr()
        if not self.count_include_pad:
            text += ", count_include_pad=False"
        if self.divisor_override is not None:
            text += f", divisor_override={self.divisor_override}"
        return text


class AdaptiveAvgPool2d(Module):
    """The mean over each of OH×OW windows that together cover the image, whatever its
    size (see ``F.adaptive_avg_pool2d``): ``AdaptiveAvgPool2d(1)`` is global average
    pooling."""

    def __init__(self, output_size: int | Sequence[int | None]) -> None:
        super().__init__()
        self.output_size = output_size
        F.adaptive_avg_pool2d(np.zeros((1, 1, 1, 1)), output_size)  # the same checks, now

    def forward(self, x: Any) -> Tensor:
        return F.adaptive_avg_pool2d(as_input(x), self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


Pooling = MaxPool2d  # the textbook's name (its Pooling layer is max-pooling)
