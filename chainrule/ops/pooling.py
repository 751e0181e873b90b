"""Pooling of images: max_pool2d, avg_pool2d and adaptive_avg_pool2d.

They share the convolution's window geometry (``Window``) and memory layout
(batch-innermost; see ``conv.py``), and work on strided views of the input, one per
kernel tap, with no unfolded copy. Each pool's backward is a scatter onto the taps,
whose own backward is the pool's linear part again, so double backward works.

``ceil_mode`` (PyTorch's rule) rounds the number of windows up, so that the last
window may run off the bottom or right edge, as long as it starts inside the input or
its left/top padding. Those windows are handled by widening the padded input on the
bottom and right by ``extra`` rows and columns that never count: -∞ for the maximum,
0 for the sum (and the average's divisor counts them out).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from chainrule.ops import _parallel
from chainrule.ops.conv import (
    Pair,
    Window,
    _batch_innermost,
    _check_images,
    _new_images,
    _pad,
    _scatter_taps,
)
from chainrule.tensor import Function, Tensor, as_tensor

__all__ = ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"]


class Pool(NamedTuple):
    """Where the windows of a pooling sit: the window (size, step, padding on both
    sides, dilation) and ``extra`` rows and columns at the bottom and right, beyond the
    padding, that ceil_mode's last windows reach into."""

    window: Window
    extra: tuple[int, int] = (0, 0)

    def widened(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The (N, C, H, W) shape of the input with the extra rows and columns."""
        n, c, h, w = shape
        return (n, c, h + self.extra[0], w + self.extra[1])

    def output_size(self, shape: tuple[int, ...]) -> tuple[int, int]:
        return self.window.output_size(self.widened(shape), "pooling")


def _tap_views(x: np.ndarray, pool: Pool, fill: float) -> list[np.ndarray]:
    """Tap k of every window, for each k in row-major order: strided (N, C, OH, OW)
    views of ``x`` padded with ``fill`` (no copies beyond the padded array).

    Stored batch-innermost, each view has contiguous runs of N values, so NumPy's
    vectorised loops work on them directly; pooling is then a few elementwise
    operations per tap, with no unfolded copy of the input.
    """
    (ph, pw), (eh, ew) = pool.window.padding, pool.extra
    if eh or ew:
        n, c, h, w = x.shape
        padded = _new_images((n, c, h + 2 * ph + eh, w + 2 * pw + ew), x.dtype, fill)
        padded[:, :, ph:ph + h, pw:pw + w] = x
    else:
        padded = _pad(x, (ph, pw), fill)
    return [padded[:, :, rows, cols]
            for _, _, _, rows, cols in pool.window.taps(pool.output_size(x.shape))]


def _scatter(piece: Any, input_shape: tuple[int, ...], pool: Pool,
             out_size: tuple[int, int], dtype: np.dtype) -> np.ndarray:
    """Add ``piece(k, i, j, c)`` onto the pixels tap k read (see ``_scatter_taps``); what
    falls on the extra rows and columns is dropped."""
    grad = _scatter_taps(piece, pool.widened(input_shape), pool.window, out_size, dtype)
    return grad[:, :, :input_shape[2], :input_shape[3]] if any(pool.extra) else grad


# --------------------------------------------------------------------------- max
class PoolSelect(Function):
    """Read each window's value at a fixed tap (``winners[n, c, oh, ow]`` = k): the
    linear operation behind max-pooling once the maxima are known."""

    rule = "y = x at each window's chosen pixel: dx = g at those pixels, 0 elsewhere"
    formula = "y = x at a fixed chosen pixel of each window"

    def __init__(self, pool: Pool, winners: np.ndarray | None) -> None:
        self.pool, self.winners = pool, winners

    @property
    def window(self) -> Window:
        return self.pool.window

    @property
    def ceil_mode(self) -> bool:
        """Whether the last windows run off the edge (ceil_mode that changed the size)."""
        return any(self.pool.extra)

    def forward(self, x):
        self.input_shape = x.shape
        taps = _tap_views(x, self.pool, 0.0)
        out = taps[0] * (self.winners == 0)
        for k, tap in enumerate(taps[1:], start=1):
            out += tap * (self.winners == k)
        return out

    def backward(self, g):
        return PoolScatter(self.pool, self.winners, self.input_shape)(g)


class MaxPool2d(PoolSelect):
    """The largest value of each window. Ties: the gradient goes to the *first* maximum
    of the window in row-major order (as in PyTorch), never split."""

    rule = "d max/dxᵢ = 1 for the window's first maximum (row-major), 0 elsewhere"
    formula = "y = the maximum of each window (stride, padding, dilation, ceil_mode)"
    special = ("ties: the gradient goes to the first maximum in row-major order, never split (as "
               "torch); padding never wins; a maximum of -∞ goes to the window's first pixel "
               "inside the image")

    def __init__(self, pool: Pool) -> None:
        super().__init__(pool, None)

    def forward(self, x):
        self.input_shape = x.shape
        lowest = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        taps = _tap_views(x, self.pool, lowest)  # padding never wins
        out = np.empty_like(taps[0])  # (order "K": the taps' batch-innermost layout)
        winners = np.empty_like(out, dtype=np.min_scalar_type(len(taps) - 1))

        def pool(i):  # the whole arrays, or a share of the channels (ops/_parallel.py)
            top = out[i]
            np.copyto(top, taps[0][i])
            for tap in taps[1:]:
                np.maximum(top, tap[i], out=top)
            # The first maximum's tap = how many leading taps are all below the maximum.
            # Counting with vectorised comparisons is much faster than an argmax over
            # the taps or than masked assignments.
            below = taps[0][i] < top
            first = winners[i]
            np.copyto(first, below)
            for tap in taps[1:-1]:
                below &= tap[i] < top
                first += below
            if x.dtype.kind == "f":
                # a maximum of -inf ties with the padding: as in PyTorch, the window's
                # first pixel inside the image wins then (and gets the gradient)
                empty = top == -np.inf
                if empty.any():
                    first[empty] = np.broadcast_to(self._first_inside(out.shape[2:]),
                                                   top.shape)[empty]

        _parallel.over_channels(out.shape, pool)
        self.winners = winners
        return out

    def _first_inside(self, out_size: tuple[int, int]) -> np.ndarray:
        """For each window, its first tap (row-major) not in the top or left padding,
        as an (OH, OW) array of tap numbers."""
        (kh, kw), stride, padding, dilation = self.pool.window
        first = [np.clip(-((o * s - p) // d), 0, k - 1)  # ⌈(p - o·s)/d⌉, at least 0
                 for o, s, p, d, k in zip((np.arange(out_size[0]), np.arange(out_size[1])),
                                          stride, padding, dilation, (kh, kw))]
        return first[0][:, None] * kw + first[1]

    def flat_indices(self) -> np.ndarray:
        """Each window's winner as PyTorch's ``return_indices`` gives it: the flat
        index row·W + column of the input pixel within its (H, W) plane (int64)."""
        window, w = self.pool.window, self.input_shape[3]
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = window
        oh, ow = self.winners.shape[2:]
        i, j = np.divmod(self.winners.astype(np.int64), kw)  # the winning tap's offset
        rows = (np.arange(oh) * sh - ph)[:, None] + i * dh
        cols = (np.arange(ow) * sw - pw) + j * dw
        return rows * w + cols


class PoolScatter(Function):
    """Add each window's gradient to the pixel at its chosen tap (max-pool's backward)."""

    rule = "adds g to each window's chosen pixel: d/dg reads the upstream gradient there"
    formula = "dx = g added to the chosen pixel of each window (max-pool's backward)"

    def __init__(self, pool: Pool, winners: np.ndarray,
                 input_shape: tuple[int, ...]) -> None:
        self.pool, self.winners, self.input_shape = pool, winners, input_shape

    def forward(self, g):
        g = _batch_innermost(g)  # the layout of the winners and of the result
        # multiplying by each tap's mask, not assigning through it: fast, keeps the dtype
        return _scatter(lambda k, i, j, c: g[c] * (self.winners[c] == k), self.input_shape,
                        self.pool, g.shape[2:], g.dtype)

    def backward(self, h):
        return PoolSelect(self.pool, self.winners)(h)


# --------------------------------------------------------------------------- average
class AvgPool2d(Function):
    """The sum of each window divided by its divisor: kh·kw by default (zero padding
    counts as values, PyTorch's ``count_include_pad=True``), or per window the number
    of real pixels or of pixels up to the padded edge (see ``_divisors``)."""

    rule = "y = Σ_window x / d: dx = g/d added to every pixel of the window"
    formula = "y = the sum of each window / its divisor d (kh·kw by default)"
    special = "zero padding counts in d unless count_include_pad=False; ceil_mode's " \
              "overhang never counts (torch's divisors)"

    def __init__(self, pool: Pool, scale: float | np.ndarray, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None:
        self.pool, self.scale = pool, scale  # 1/divisor: one number, or one per (OH, OW)
        # (how the divisors were chosen, for readers such as the ONNX export)
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    window = PoolSelect.window
    ceil_mode = PoolSelect.ceil_mode

    def forward(self, x):
        self.input_shape = x.shape
        taps = _tap_views(x, self.pool, 0.0)
        out = taps[0].copy(order="K")
        for tap in taps[1:]:
            out += tap
        out *= self.scale
        return out

    def backward(self, g):
        return AvgPoolScatter(self.pool, self.scale, self.input_shape, self.count_include_pad,
                              self.divisor_override)(g)


class AvgPoolScatter(Function):
    """Spread each window's gradient evenly over its pixels (avg-pool's backward)."""

    rule = "adds g/d to every pixel of the window: d/dg is avg_pool2d"
    formula = "dx = g/d added to every pixel of each window (avg-pool's backward)"

    def __init__(self, pool: Pool, scale: float | np.ndarray, input_shape: tuple[int, ...],
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        self.pool, self.scale, self.input_shape = pool, scale, input_shape
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, g):
        share = _batch_innermost(g) * self.scale
        return _scatter(lambda k, i, j, c: share[c], self.input_shape, self.pool, g.shape[2:],
                        g.dtype)

    def backward(self, h):
        return AvgPool2d(self.pool, self.scale, self.count_include_pad,
                         self.divisor_override)(h)


def _divisors(pool: Pool, shape: tuple[int, ...], count_include_pad: bool,
              out_size: tuple[int, int]) -> np.ndarray:
    """Each window's divisor, PyTorch's rule, as an (OH, OW) array: the window's extent
    clipped to the padded input (padding counts, ceil_mode's overhang does not), or,
    without count_include_pad, clipped to the input itself."""
    per_axis = []
    for n, k, s, p, o in zip(shape[2:], pool.window.kernel, pool.window.stride,
                             pool.window.padding, out_size):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, n + p)
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, n)
        per_axis.append(end - start)
    return np.multiply.outer(*per_axis)


# --------------------------------------------------------------------------- geometry
def _pool_geometry(x: Tensor, kernel_size: Pair, stride: Pair | None, padding: Pair,
                   dilation: Pair, ceil_mode: bool, op: str) -> Pool:
    """Check the settings and place the windows, ceil_mode's extra rows included."""
    _check_images(x, op)
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"{op}: ceil_mode must be True or False, got {ceil_mode!r}")
    window = Window.make(kernel_size, kernel_size if stride is None else stride, padding,
                         dilation, op)
    if any(p > k // 2 for p, k in zip(window.padding, window.kernel)):
        raise ValueError(f"{op}: padding {window.padding} must be at most half the kernel "
                         f"size {window.kernel} (otherwise a window could hold only padding)")
    if not ceil_mode:
        window.output_size(x.shape, op)  # raises when the kernel does not fit
        return Pool(window)
    extra = []
    for n, s, p, span in zip(x.shape[2:], window.stride, window.padding, window.span()):
        count = -(-(n + 2 * p - span) // s) + 1  # windows, rounded up
        if count >= 2 and (count - 1) * s >= n + p:  # the last would start in the padding
            count -= 1
        if count < 1:
            window.output_size(x.shape, op)  # the kernel does not fit: that error
        extra.append(max(0, (count - 1) * s + span - (n + 2 * p)))
    return Pool(window, tuple(extra))


def max_pool2d(x: Any, kernel_size: Pair, stride: Pair | None = None, padding: Pair = 0,
               dilation: Pair = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """The maximum of each kernel_size window (stride defaults to kernel_size; padding
    never wins), as ``torch.nn.functional.max_pool2d`` with the same arguments.

    ``dilation`` spaces the window's taps; ``ceil_mode`` rounds the number of windows
    up (the last may run off the edge, but starts inside the input or its padding).
    On ties the gradient goes to the first maximum in row-major order.
    ``return_indices=True`` also returns each maximum's flat index row·W + column in
    its input plane (int64, as PyTorch's).
    """
    x = as_tensor(x)
    pool = _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode,
                          "max_pool2d")
    function = MaxPool2d(pool)
    out = function(x)
    if not return_indices:
        return out
    return out, Tensor._wrap(function.flat_indices())


def avg_pool2d(x: Any, kernel_size: Pair, stride: Pair | None = None, padding: Pair = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """The mean of each kernel_size window (stride defaults to kernel_size), as
    ``torch.nn.functional.avg_pool2d`` with the same arguments.

    The divisor is PyTorch's: with ``count_include_pad`` (the default) the zero padding
    counts as values, so a window is divided by kh·kw, or, for ceil_mode's last
    windows, by its part up to the padded edge; without it, by its number of real
    pixels. ``divisor_override`` divides every window by that number instead.
    """
    x = as_tensor(x)
    if x.dtype.kind != "f":
        raise TypeError(f"avg_pool2d: needs floating-point input, got dtype {x.dtype}; "
                        "convert it with x.astype('float32')")
    pool = _pool_geometry(x, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d")
    if divisor_override is not None:
        if isinstance(divisor_override, bool) or not isinstance(
                divisor_override, (int, np.integer)) or divisor_override == 0:
            raise ValueError(f"avg_pool2d: divisor_override must be a non-zero int (or "
                             f"None), got {divisor_override!r}")
        scale: float | np.ndarray = 1.0 / int(divisor_override)
    else:
        divisors = _divisors(pool, x.shape, bool(count_include_pad), pool.output_size(x.shape))
        first = divisors.flat[0]
        scale = 1.0 / float(first) if np.all(divisors == first) else \
            (1.0 / divisors).astype(x.dtype)
    return AvgPool2d(pool, scale, bool(count_include_pad), divisor_override)(x)


# --------------------------------------------------------------------------- adaptive
def _adaptive_matrix(n: int, out: int, dtype: np.dtype) -> np.ndarray:
    """The (out, n) matrix averaging window i = [⌊i·n/out⌋, ⌈(i+1)·n/out⌉) of an axis
    of n places (PyTorch's windows)."""
    i = np.arange(out)
    start, end = (i * n) // out, -(-((i + 1) * n) // out)
    places = np.arange(n)
    inside = (places >= start[:, None]) & (places < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


class AdaptiveAvgPool2d(Function):
    """The mean of each of OH×OW windows that together cover the image, as
    y = A_h · x · A_wᵀ per image: a window's mean is the mean over its rows of the
    means over its columns, and A averages each window's places along one axis."""

    rule = "y = A_h·x·A_wᵀ: dx = A_hᵀ·g·A_w (g/|window| added to every pixel of it)"
    formula = "y[i, j] = the mean of x over rows [⌊i·H/OH⌋, ⌈(i+1)·H/OH⌉) and columns " \
              "[⌊j·W/OW⌋, ⌈(j+1)·W/OW⌉)"

    def __init__(self, rows: np.ndarray, cols: np.ndarray) -> None:
        self.rows, self.cols = rows, cols  # A_h (OH, H), A_w (OW, W)

    def forward(self, x):
        return self.rows @ x @ self.cols.T

    def backward(self, g):
        # linear in x, so its gradient is the transposed map, recorded (double backward)
        return Tensor._wrap(self.rows.T) @ g @ Tensor._wrap(self.cols)


def adaptive_avg_pool2d(x: Any, output_size: int | Sequence[int | None]) -> Tensor:
    """The mean over each of OH×OW windows covering the image, as
    ``torch.nn.functional.adaptive_avg_pool2d``: window i of an axis of n places spans
    [⌊i·n/OH⌋, ⌈(i+1)·n/OH⌉), so the windows may overlap and differ in size.
    ``output_size`` is an int (OH = OW) or a pair, None keeping that axis's size."""
    x = as_tensor(x)
    op = "adaptive_avg_pool2d"
    _check_images(x, op)
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: needs floating-point input, got dtype {x.dtype}; convert "
                        "it with x.astype('float32')")
    sizes = (output_size, output_size) if not isinstance(output_size, (tuple, list)) \
        else tuple(output_size)
    if len(sizes) != 2 or not all(
            s is None or (isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                          and s >= 1) for s in sizes):
        raise ValueError(f"{op}: output_size must be a positive int or a pair of them "
                         f"(None keeps that axis), got {output_size!r}")
    (h, w) = x.shape[2:]
    oh, ow = (h if sizes[0] is None else int(sizes[0])), (w if sizes[1] is None else
                                                          int(sizes[1]))
    if min(h, w) < 1:
        raise ValueError(f"{op}: the input of shape {x.shape} has an empty image")
    return AdaptiveAvgPool2d(_adaptive_matrix(h, oh, x.dtype),
                             _adaptive_matrix(w, ow, x.dtype))(x)
