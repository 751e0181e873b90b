"""Pooling of images: max_pool2d and avg_pool2d.

They share the convolution's window geometry (``Window``) and memory layout
(batch-innermost; see ``conv.py``), and work on strided views of the input, one per
kernel tap, with no unfolded copy. Each pool's backward is a scatter onto the taps,
whose own backward is the pool's linear part again, so double backward works.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.ops.conv import (
    Pair,
    Window,
    _batch_innermost,
    _check_images,
    _pad,
    _scatter_taps,
)
from chainrule.tensor import Function, Tensor, as_tensor

__all__ = ["max_pool2d", "avg_pool2d"]


def _tap_views(x: np.ndarray, window: Window, fill: float) -> list[np.ndarray]:
    """Tap k of every window, for each k in row-major order: strided (N, C, OH, OW)
    views of ``x`` padded with ``fill`` (no copies).

    Stored batch-innermost, each view has contiguous runs of N values, so NumPy's
    vectorised loops work on them directly; pooling is then a few elementwise
    operations per tap, with no unfolded copy of the input.
    """
    padded = _pad(x, window.padding, fill)
    out_size = window.output_size(x.shape, "pooling")
    return [padded[:, :, rows, cols] for _, _, _, rows, cols in window.taps(out_size)]


# --------------------------------------------------------------------------- pooling
class PoolSelect(Function):
    """Read each window's value at a fixed tap (``winners[n, c, oh, ow]`` = k): the
    linear operation behind max-pooling once the maxima are known."""

    rule = "y = x at each window's chosen pixel: dx = g at those pixels, 0 elsewhere"

    def __init__(self, window: Window, winners: np.ndarray | None) -> None:
        self.window, self.winners = window, winners

    def forward(self, x):
        self.input_shape = x.shape
        taps = _tap_views(x, self.window, 0.0)
        out = taps[0] * (self.winners == 0)
        for k, tap in enumerate(taps[1:], start=1):
            out += tap * (self.winners == k)
        return out

    def backward(self, g):
        return PoolScatter(self.window, self.winners, self.input_shape)(g)


class MaxPool2d(PoolSelect):
    """The largest value of each window. Ties: the gradient goes to the *first* maximum
    of the window in row-major order (as in PyTorch), never split."""

    rule = "d max/dxᵢ = 1 for the window's first maximum (row-major), 0 elsewhere"

    def __init__(self, window: Window) -> None:
        super().__init__(window, None)

    def forward(self, x):
        self.input_shape = x.shape
        lowest = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        taps = _tap_views(x, self.window, lowest)  # padding never wins
        out = taps[0].copy(order="K")
        for tap in taps[1:]:
            np.maximum(out, tap, out=out)
        # The first maximum's tap = how many leading taps are all below the maximum.
        # Counting with vectorised comparisons is much faster than an argmax over the
        # taps or than masked assignments.
        below = taps[0] < out
        winners = below.astype(np.min_scalar_type(len(taps) - 1))
        for tap in taps[1:-1]:
            below &= tap < out
            winners += below
        self.winners = winners
        return out


class PoolScatter(Function):
    """Add each window's gradient to the pixel at its chosen tap (max-pool's backward)."""

    rule = "adds g to each window's chosen pixel: d/dg reads the upstream gradient there"

    def __init__(self, window: Window, winners: np.ndarray,
                 input_shape: tuple[int, ...]) -> None:
        self.window, self.winners, self.input_shape = window, winners, input_shape

    def forward(self, g):
        g = _batch_innermost(g)  # the layout of the winners and of the result
        # multiplying by each tap's mask, not assigning through it: fast, keeps the dtype
        return _scatter_taps(lambda k, i, j: g * (self.winners == k), self.input_shape,
                             self.window, g.shape[2:], g.dtype)

    def backward(self, h):
        return PoolSelect(self.window, self.winners)(h)


class AvgPool2d(Function):
    """The mean of each window; padding counts as zeros in the mean (PyTorch's default
    ``count_include_pad=True``), so every window is divided by kh·kw."""

    rule = "y = Σ_window x / (kh·kw): dx = g/(kh·kw) added to every pixel of the window"

    def __init__(self, window: Window) -> None:
        self.window = window

    def forward(self, x):
        self.input_shape = x.shape
        taps = _tap_views(x, self.window, 0.0)
        out = taps[0].copy(order="K")
        for tap in taps[1:]:
            out += tap
        out *= 1.0 / len(taps)
        return out

    def backward(self, g):
        return AvgPoolScatter(self.window, self.input_shape)(g)


class AvgPoolScatter(Function):
    """Spread each window's gradient evenly over its pixels (avg-pool's backward)."""

    rule = "adds g/(kh·kw) to every pixel of the window: d/dg is avg_pool2d"

    def __init__(self, window: Window, input_shape: tuple[int, ...]) -> None:
        self.window, self.input_shape = window, input_shape

    def forward(self, g):
        kh, kw = self.window.kernel
        share = _batch_innermost(g) * (1.0 / (kh * kw))
        return _scatter_taps(lambda k, i, j: share, self.input_shape, self.window,
                             g.shape[2:], g.dtype)

    def backward(self, h):
        return AvgPool2d(self.window)(h)


# --------------------------------------------------------------------------- functions
def _pool_window(x: Tensor, kernel_size: Pair, stride: Pair | None, padding: Pair,
                 op: str) -> Window:
    _check_images(x, op)
    window = Window.make(kernel_size, kernel_size if stride is None else stride, padding,
                         1, op)
    if any(p > k // 2 for p, k in zip(window.padding, window.kernel)):
        raise ValueError(f"{op}: padding {window.padding} must be at most half the kernel "
                         f"size {window.kernel} (otherwise a window could hold only padding)")
    window.output_size(x.shape, op)
    return window


def max_pool2d(x: Any, kernel_size: Pair, stride: Pair | None = None,
               padding: Pair = 0) -> Tensor:
    """The maximum of each kernel_size window (stride defaults to kernel_size; padding
    never wins). On ties the gradient goes to the first maximum in row-major order."""
    x = as_tensor(x)
    return MaxPool2d(_pool_window(x, kernel_size, stride, padding, "max_pool2d"))(x)


def avg_pool2d(x: Any, kernel_size: Pair, stride: Pair | None = None,
               padding: Pair = 0) -> Tensor:
    """The mean of each kernel_size window (stride defaults to kernel_size); zero
    padding is counted in the mean, as in PyTorch's default."""
    x = as_tensor(x)
    if x.dtype.kind != "f":
        raise TypeError(f"avg_pool2d: needs floating-point input, got dtype {x.dtype}; "
                        "convert it with x.astype('float32')")
    return AvgPool2d(_pool_window(x, kernel_size, stride, padding, "avg_pool2d"))(x)
