"""Convolution of images: im2col/col2im and conv2d (pooling, which shares the window
geometry and the memory layout, is in ``pooling.py``).

Images are NCHW: (batch, channels, height, width); a convolution's weight is
(out_channels, in_channels/groups, kh, kw), PyTorch's layout.

The textbook's method, im2col: copy every receptive field (the kh×kw pixels of all
input channels under one position of the kernel) into one row of a matrix. The
convolution is then a single matrix product of that matrix with the weight reshaped
to (out_channels, in_channels·kh·kw), and the backward pass is two more products:
dW = g·im2colᵀ, and d(im2col) = Wᵀ·g, whose rows col2im adds back onto the pixels
they were copied from (a pixel inside several windows collects several gradients).

How it is made fast (NumPy only; no Python loop over output positions or samples):

* conv2d computes with one of three algorithms, chosen per layer by a measured rule:
  plain im2col, im2col in cache-sized bands of output rows, or Winograd's F(2×2, 3×3)
  (see "algorithms" below, ``_winograd.py`` and docs/convolution.md); large arrays
  reuse memory through ``_scratch.py``, so a training step does not page-fault.
* im2col is one copy of a ``sliding_window_view`` (a strided view of all windows);
  col2im and the pools loop only over the kh·kw kernel taps, each step one
  vectorised slice of the whole batch.
* The unfolded matrix is stored transposed, (C·kh·kw, OH·OW·N): OpenBLAS multiplies
  this short, very wide matrix about ten times faster than the textbook's tall, narrow
  one holding the same numbers (1 ms versus 11 ms for SimpleConvNet's convolution at
  batch 100 on a 2-core machine).
* Arrays are stored batch-innermost, (C, H, W, N) in memory, while their shape stays
  (N, C, H, W) (a transposed view; see "memory layout" below). The product above comes
  out in that order, so a convolution's output is a free view; and every slice that
  im2col, col2im and the pools take has long contiguous runs, which NumPy's loops
  process several times faster than NCHW's short image rows.
* Pooling works on strided views of the input, one per kernel tap (no unfolded copy);
  the max-pool's winner per window is counted with comparisons, not found by argmax.
* Only the gradients that are needed are computed, and everything stays in the
  input's dtype (float32 in, float32 out).

Double backward: the backward of a convolution is itself made of two operations, the
transposed convolution (the gradient for the input) and the weight gradient. The three
Functions' backward passes call each other, so ``create_graph=True`` differentiates
through convolutions exactly (the same idea as GetItem/ScatterAdd in ``shape.py``);
likewise im2col/col2im and the pools with their scatter operations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from chainrule.ops import _parallel, _winograd
from chainrule.ops._scratch import recycled
from chainrule.ops.nn import _sum_rows
from chainrule.ops.padding import pad
from chainrule.tensor import Function, Tensor, _GradMode, as_tensor

__all__ = ["conv2d", "conv_padding", "im2col", "col2im", "Window"]

Pair = int | Sequence[int]


# --------------------------------------------------------------------------- geometry
def _pair(value: Pair, name: str, op: str, minimum: int) -> tuple[int, int]:
    """``value`` as (height, width): an int is used for both."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else \
        tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                 for v in pair):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{op}: {name} must be at least {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


class Window(NamedTuple):
    """Where a kernel sits on an image: its size, step, zero border and dilation.

    Every output position (oh, ow) reads, for each kernel tap (i, j), the padded
    input at row ``oh·stride + i·dilation`` and column ``ow·stride + j·dilation``.
    """

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int] = (1, 1)

    @classmethod
    def make(cls, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair = 1,
             op: str = "conv2d") -> Window:
        """Check and normalise the four settings (ints or (height, width) pairs)."""
        return cls(_pair(kernel, "kernel_size", op, 1), _pair(stride, "stride", op, 1),
                   _pair(padding, "padding", op, 0), _pair(dilation, "dilation", op, 1))

    def span(self) -> tuple[int, int]:
        """How many input pixels the kernel covers: dilation·(kernel - 1) + 1."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation))

    def output_size(self, shape: tuple[int, ...], op: str) -> tuple[int, int]:
        """(OH, OW) = (H + 2·padding - span) // stride + 1 for an (N, C, H, W) input."""
        padded = [n + 2 * p for n, p in zip(shape[2:], self.padding)]
        span = self.span()
        if padded[0] < span[0] or padded[1] < span[1]:
            dilated = f" with dilation {self.dilation}" if self.dilation != (1, 1) else ""
            raise ValueError(
                f"{op}: the kernel {self.kernel}{dilated} spans {span}, which is larger "
                f"than the padded input {tuple(padded)} (input of shape {shape}, padding "
                f"{self.padding} on each side); use a smaller kernel or more padding")
        return tuple((n - s) // st + 1 for n, s, st in zip(padded, span, self.stride))

    def taps(self, out_size: tuple[int, int]) -> list[tuple[int, int, int, slice, slice]]:
        """For every kernel tap in row-major order: (k, i, j, rows, cols), where k is
        the tap's flat index i·kw + j and ``padded[..., rows, cols]`` is the value that
        tap reads at every output position, an (N, C, OH, OW) strided slice."""
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.stride, self.dilation
        oh, ow = out_size
        return [(i * kw + j, i, j,
                 slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
                 slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))
                for i in range(kh) for j in range(kw)]


# --------------------------------------------------------------------------- memory layout
# Every array these operations allocate has the logical shape (N, C, H, W) but is stored
# batch-innermost, as (C, H, W, N) in memory. Then each slice that im2col, col2im and
# the pools take (all channels, a band of rows and columns, every sample) has a long
# contiguous inner run (W·N or N values), which NumPy processes several times faster
# than the short rows of W values of the NCHW order, and the matrix product's result
# (C_out, OH·OW·N) already is such an array. Elementwise operations keep their input's
# memory order, so the whole network stays in this layout without a copy; only the
# first layer's input (and a flattened gradient coming back) is reordered once.
def _batch_innermost(x: np.ndarray) -> np.ndarray:
    """``x`` (logical (N, C, H, W)) stored as (C, H, W, N): itself if it already is,
    else one reordering copy."""
    return np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)


def _new_images(shape: tuple[int, ...], dtype: np.dtype, fill: float | None) -> np.ndarray:
    """A new (N, C, H, W) array stored batch-innermost, filled with ``fill`` (None:
    uninitialised); recycled memory (see ``_scratch``), so no page faults."""
    n, c, h, w = shape
    out = recycled((c, h, w, n), dtype)
    if fill is not None:
        out.fill(fill)
    return out.transpose(3, 0, 1, 2)


def _pad(x: np.ndarray, padding: tuple[int, int], fill: float) -> np.ndarray:
    """``x`` with ``padding`` rows/columns of ``fill`` around each image, stored
    batch-innermost (no copy without padding when ``x`` already is)."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return _batch_innermost(x)
    n, c, h, w = x.shape
    out = _new_images((n, c, h + 2 * ph, w + 2 * pw), x.dtype, fill)
    out[:, :, ph:ph + h, pw:pw + w] = x
    return out


def _scatter_taps(piece: Callable[[int, int, int, Any], np.ndarray],
                  input_shape: tuple[int, ...], window: Window, out_size: tuple[int, int],
                  dtype: np.dtype) -> np.ndarray:
    """Add ``piece(k, i, j, c)`` (an (N, C, OH, OW) array per kernel tap, indexed by
    ``c``) onto the input pixels that tap read, and return the (N, C, H, W) sums (padding
    cut off). ``c`` is ``...`` (everything), or with several threads ``(:, channels)``
    for one thread's share of the channels (``_parallel.over_channels``).

    The adjoint of reading the taps: the one loop behind col2im and the pools'
    gradients (kh·kw vectorised steps). Where windows overlap a pixel collects several
    pieces, so they are added; where they do not (stride ≥ kernel span), each pixel gets
    at most one and the pieces are simply written, and when the windows tile the whole
    padded image (undilated) not even zeros are needed first.
    """
    n, c, h, w = input_shape
    (ph, pw), span, stride = window.padding, window.span(), window.stride
    padded = (h + 2 * ph, w + 2 * pw)
    overlap = stride[0] < span[0] or stride[1] < span[1]
    # (dilated taps leave gaps inside their span, which then must start at zero too)
    tiled = stride == span and window.dilation == (1, 1) and \
        padded == (out_size[0] * stride[0], out_size[1] * stride[1])
    out = _new_images((n, c, *padded), dtype, None)
    taps = window.taps(out_size)

    def scatter(part: Any) -> None:
        if not tiled:
            out[part] = 0
        target = out[part]
        for k, i, j, rows, cols in taps:
            if overlap:
                target[:, :, rows, cols] += piece(k, i, j, part)
            else:
                target[:, :, rows, cols] = piece(k, i, j, part)

    _parallel.over_channels(out.shape, scatter)
    return out[:, :, ph:ph + h, pw:pw + w]


def _unfold(x: np.ndarray, window: Window) -> np.ndarray:
    """im2col, transposed: a contiguous (C, kh, kw, OH, OW, N) array, whose reshape to
    (C·kh·kw, OH·OW·N) has one column per receptive field."""
    (sh, sw), (dh, dw) = window.stride, window.dilation
    padded = _pad(x, window.padding, 0.0)
    # (N, C, OH', OW', span_h, span_w): the windows at every position, undilated: a view
    view = sliding_window_view(padded, window.span(), axis=(2, 3))
    view = view[:, :, ::sh, ::sw, ::dh, ::dw]  # the windows at the stride, taps at the dilation
    return np.ascontiguousarray(view.transpose(1, 4, 5, 2, 3, 0))  # the one copy


def _fold(cols: np.ndarray, input_shape: tuple[int, ...], window: Window) -> np.ndarray:
    """col2im of a (C, kh, kw, OH, OW, N) array: add every column back onto the pixels
    of its window, giving (N, C, H, W)."""
    return _scatter_taps(lambda k, i, j, c: cols[:, i, j].transpose(3, 0, 1, 2)[c], input_shape,
                         window, cols.shape[3:5], cols.dtype)


def _as_groups(a: np.ndarray, groups: int) -> np.ndarray:
    """A matrix whose rows are split into ``groups`` equal blocks, as (G, rows/G, cols)."""
    return a.reshape(groups, -1, a.shape[-1])


# --------------------------------------------------------------------------- algorithms
# conv2d computes with one of three algorithms, all giving the same numbers up to
# rounding (the tests hold each to the plain one and to PyTorch):
#
# * "im2col": the textbook's, one column matrix of the whole batch, one matrix product;
# * "banded": im2col one band of output rows at a time, into a reused buffer of about
#   BAND_BYTES, multiplied while it is still in the cache; never a whole column matrix;
# * "winograd": Winograd's F(2×2, 3×3) for 3×3, stride-1 kernels (``_winograd.py``):
#   2.25× fewer multiplications, paid for with transforms of the tiles.
#
# The backward passes are convolutions too: the input's gradient of a stride-1
# convolution is the convolution of the output gradient, padded by k-1-padding, with
# the flipped, transposed kernel (gathers, not col2im's scatter-adds), and the
# weight's gradient is a product of the output gradient with the input's columns
# (or tiles). Each of the three passes picks its algorithm by ``_choose_algorithm``.
# When both gradients are needed, one pass over the input gradient's columns gives
# both (``_conv_grads``).
BAND_BYTES = 2 * 2**20  # im2col bands (measured: 4-8 MiB bands were slower)
ALGORITHMS = ("im2col", "banded", "winograd")
_forced_algorithm: str | None = None  # set by use_algorithm (tests, benchmarks)


class use_algorithm:  # noqa: N801 (used as a context manager, like np.errstate)
    """Make conv2d use one algorithm wherever it applies, inside a ``with`` block
    (``None``: the measured rule). For tests and benchmarks."""

    def __init__(self, algorithm: str | None) -> None:
        if algorithm is not None and algorithm not in ALGORITHMS:
            raise ValueError(f"unknown convolution algorithm {algorithm!r}; choose one of "
                             f"{ALGORITHMS} or None")
        self.algorithm = algorithm

    def __enter__(self) -> None:
        global _forced_algorithm
        self.previous, _forced_algorithm = _forced_algorithm, self.algorithm

    def __exit__(self, *exc: object) -> None:
        global _forced_algorithm
        _forced_algorithm = self.previous


def _winograd_applies(window: Window, groups: int) -> bool:
    return (window.kernel == (3, 3) and window.stride == (1, 1)
            and window.dilation == (1, 1) and groups == 1)


def _choose_algorithm(window: Window, in_channels: int, out_channels: int,
                      out_size: tuple[int, int], groups: int,
                      weight_grad: bool = False) -> str:
    """The algorithm for a convolution's forward pass, its input gradient computed as a
    convolution (with the channel counts swapped), or (``weight_grad``) its weight
    gradient.

    The rule, measured with ``benchmarks/bench_conv.py --algorithms`` (one thread,
    batch 100, DeepConvNet's and SimpleConvNet's shapes and two wider layers, on two
    machines; the tables are in docs/convolution.md):

    * Winograd F(2×2, 3×3) for the forward pass and the input gradient of 3×3,
      stride-1 kernels with at least 128 input and output channels and an output of
      at least 14×14. Its transforms cost about as much per channel as im2col's copy,
      and its products are short (one per transform point, channels deep), which
      OpenBLAS runs slowly; only with many channels do the multiplications it saves
      outweigh that. On a 2-core AMD EPYC it was 10-18 % faster than banded im2col for
      128→128 at 14×14, within ±5 % for 64→64 at 16×16, and up to 2× slower on the
      textbook's networks (on an Intel machine it was 5-12 % faster for DeepConvNet's
      conv4, 32→32 at 16×16: the rule takes the side that is never much slower);
    * never Winograd for the weight gradient: its adjoint transforms made it slower
      than banded im2col on every shape measured (up to 2.6× slower at 256 channels);
    * plain im2col when a column holds at most 32 numbers (C·kh·kw ≤ 32: a first layer
      of one or three channels), where one product of the whole batch is faster than
      products of few-row bands;
    * banded im2col otherwise (up to 2× faster than plain im2col on 16-channel 28×28
      layers, where the whole column matrix is 45 MB; never a whole column matrix).
    """
    if _forced_algorithm is not None:  # wherever it applies; plain im2col elsewhere
        if _forced_algorithm == "winograd" and _winograd_applies(window, groups) \
                or _forced_algorithm == "banded" and groups == 1:
            return _forced_algorithm
        return "im2col"
    if not weight_grad and _winograd_applies(window, groups) \
            and min(in_channels, out_channels) >= 128 and min(out_size) >= 14:
        return "winograd"
    column = in_channels // groups * window.kernel[0] * window.kernel[1]
    return "banded" if groups == 1 and column > 32 else "im2col"


def _pad_stored(x: np.ndarray, window: Window, out_size: tuple[int, int]) -> np.ndarray:
    """The zero-padded input every algorithm reads, stored (C, Hp, Wp, N): the padding,
    plus, for a kernel Winograd can take, the rows and columns its last tiles read."""
    if _winograd_applies(window, 1):
        return _winograd.pad_input(x, window.padding, out_size, _winograd.F2x2)
    (ph, pw), (h, w) = window.padding, x.shape[2:]
    return _winograd.pad_stored(x, window.padding, (h + 2 * ph, w + 2 * pw))


def _windows(padded: np.ndarray, window: Window, out_size: tuple[int, int]) -> np.ndarray:
    """Every receptive field of a padded (C, Hp, Wp, N) input, as a strided view
    (C, kh, kw, OH, OW, N): im2col's columns before the copy. Made once per pass; each
    band copies its rows ``[:, :, :, r0:r1]`` (a new view per band cost as much as a
    small band's copy)."""
    (sh, sw), (dh, dw), span = window.stride, window.dilation, window.span()
    part = padded[:, :(out_size[0] - 1) * sh + span[0], :(out_size[1] - 1) * sw + span[1]]
    view = sliding_window_view(part, span, axis=(1, 2))[:, ::sh, ::sw, :, ::dh, ::dw]
    return view.transpose(0, 4, 5, 1, 2, 3)


def _row_bands(count: int, row_bytes: int) -> list[tuple[int, int]]:
    """``count`` output rows in nearly equal bands of at most BAND_BYTES of columns."""
    per_band = max(1, BAND_BYTES // max(row_bytes, 1))
    bands = -(-count // per_band)
    size = -(-count // bands)
    return [(start, min(start + size, count)) for start in range(0, count, size)]


def _bands(algorithm: str, rows: int, row_bytes: int) -> list[tuple[int, int]]:
    """The bands of output rows an im2col pass loops over: cache-sized ones for
    "banded"; for plain im2col the whole output, or one band per thread (see
    ``_parallel``)."""
    if algorithm == "banded":
        return _row_bands(rows, row_bytes)
    count = min(_parallel.workers(), rows)
    return [(rows * k // count, rows * (k + 1) // count) for k in range(count)]


def _grad_matrix(g: np.ndarray, groups: int) -> np.ndarray:
    """The output gradient (N, O, OH, OW) as (G, O/G, OH·OW·N): free when ``g`` is
    stored batch-innermost like a convolution's output, one copy otherwise."""
    n, o, oh, ow = g.shape
    return g.transpose(1, 2, 3, 0).reshape(groups, o // groups, oh * ow * n)


def _convolve(padded: np.ndarray, weight: np.ndarray, window: Window,
              out_size: tuple[int, int], groups: int, algorithm: str,
              bias: np.ndarray | None = None, correlate: np.ndarray | None = None
              ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """y = W ⋆ x (+ b) of a padded (C, Hp, Wp, N) input, stored (O, OH, OW, N). The
    im2col bands add the bias while their output is still in the cache.

    ``correlate``, an array stored (D, OH, OW, N) like the output (im2col algorithms,
    one group): also return cols·correlateᵀ, (C·kh·kw, D), from the same bands while
    they are in the cache; the weight gradient of the layer whose input gradient this
    convolution computes (see ``_conv_grads``).
    """
    o, (kh, kw) = weight.shape[0], window.kernel
    c, n = padded.shape[0], padded.shape[3]
    oh, ow = out_size
    if algorithm == "winograd":
        y = _winograd.convolve(padded, weight, out_size)
    elif groups == 1:  # plain or banded im2col: a loop over bands of output rows
        y = recycled((o, oh, ow, n), padded.dtype)
        w, windows = weight.reshape(o, -1), _windows(padded, window, out_size)

        def compute(bands: Sequence[tuple[int, int]]) -> np.ndarray | None:
            product = None if correlate is None else \
                np.zeros((c * kh * kw, correlate.shape[0]), dtype=padded.dtype)
            for r0, r1 in bands:
                cols = recycled((c, kh, kw, r1 - r0, ow, n), padded.dtype)
                np.copyto(cols, windows[:, :, :, r0:r1])
                cols = cols.reshape(c * kh * kw, -1)
                np.matmul(w, cols, out=y[:, r0:r1].reshape(o, -1))
                if bias is not None:
                    y[:, r0:r1] += bias[:, None, None, None]
                if product is not None:
                    product += cols @ correlate[:, r0:r1].reshape(len(correlate), -1).T
                del cols  # its memory serves the next band
            return product

        shares = _parallel.split(
            _bands(algorithm, oh, c * kh * kw * ow * n * padded.itemsize), compute)
        return y if correlate is None else (y, sum(shares[1:], shares[0]))
    else:  # grouped: plain im2col of the whole batch
        cols = recycled((c, kh, kw, oh, ow, n), padded.dtype)
        np.copyto(cols, _windows(padded, window, out_size))
        w = weight.reshape(groups, o // groups, -1)              # (G, O/G, C/G·kh·kw)
        y = recycled((o, oh, ow, n), padded.dtype)
        np.matmul(w, _as_groups(cols.reshape(-1, oh * ow * n), groups),
                  out=y.reshape(groups, o // groups, -1))        # (G, O/G, M)
    if bias is not None:
        y += bias[:, None, None, None]
    return y


# --------------------------------------------------------------------------- the three
# array computations of a convolution; each Function below is one of them, and the
# backward of each is made of the others.
def _conv_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                  window: Window, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """y = W ⋆ x (+ b) as an (N, O, OH, OW) view stored batch-innermost, and the padded
    input (C, Hp, Wp, N) that the weight's gradient reads again."""
    n, c = x.shape[:2]
    out_size = window.output_size(x.shape, "conv2d")
    algorithm = _choose_algorithm(window, c, weight.shape[0], out_size, groups)
    padded = _pad_stored(x, window, out_size)
    y = _convolve(padded, weight, window, out_size, groups, algorithm, bias)
    return y.transpose(3, 0, 1, 2), padded


def _flipped(window: Window, groups: int) -> Window | None:
    """The window of the convolution that computes a stride-1 convolution's input
    gradient (see ``_conv_input_grad``): the kernel's, padded by k-1-padding; None
    where the input gradient is not such a convolution."""
    (kh, kw), (ph, pw) = window.kernel, window.padding
    if window.stride == (1, 1) and window.dilation == (1, 1) and groups == 1 \
            and ph < kh and pw < kw:
        return Window((kh, kw), (1, 1), (kh - 1 - ph, kw - 1 - pw))
    return None


def _flipped_convolution(g: np.ndarray, weight: np.ndarray, flipped: Window,
                         size: tuple[int, int], algorithm: str,
                         correlate: np.ndarray | None = None
                         ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """The convolution of g, padded for ``flipped``, with the kernel flipped and its
    channel axes swapped: dx stored (C, H, W, N) (and ``_convolve``'s ``correlate``
    product)."""
    kernel = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    return _convolve(_pad_stored(g, flipped, size), kernel, flipped, size, 1, algorithm,
                     correlate=correlate)


def _conv_input_grad(g: np.ndarray, weight: np.ndarray, input_shape: tuple[int, ...],
                     window: Window, groups: int) -> np.ndarray:
    """dx, the transposed convolution of g.

    For stride 1 (no dilation, one group) it is the convolution of g, padded by
    k-1-padding, with the kernel flipped and its channel axes swapped:
    dx[c, h] = Σ_(o, i) g[o, h + p - i]·W[o, c, i] = Σ_(o, i') g_pad[o, h + i']·W[o, c, k-1-i'].
    Otherwise col2im(Wᵀ·g), which adds each column back onto its window.
    """
    n, o, oh, ow = g.shape
    c, (kh, kw) = input_shape[1], window.kernel
    flipped = _flipped(window, groups)
    if flipped is not None:
        size = tuple(input_shape[2:])
        algorithm = _choose_algorithm(flipped, o, c, size, 1)
        return _flipped_convolution(g, weight, flipped, size, algorithm).transpose(3, 0, 1, 2)
    w = weight.reshape(groups, weight.shape[0] // groups, -1)
    d_cols = np.matmul(w.transpose(0, 2, 1), _grad_matrix(g, groups))  # (G, C/G·kh·kw, M)
    return _fold(d_cols.reshape(c, kh, kw, oh, ow, n), input_shape, window)


def _conv_weight_grad(padded: np.ndarray, g: np.ndarray, weight_shape: tuple[int, ...],
                      window: Window, groups: int) -> np.ndarray:
    """dW = g·im2col(x)ᵀ per group (for Winograd, through its tiles) from the padded
    input (C, Hp, Wp, N)."""
    n, o, oh, ow = g.shape
    c, (kh, kw) = padded.shape[0], window.kernel
    algorithm = _choose_algorithm(window, c, o, (oh, ow), groups, weight_grad=True)
    g = _batch_innermost(g).transpose(1, 2, 3, 0)  # stored (O, OH, OW, N)
    if algorithm == "winograd":
        return _winograd.weight_grad(padded, g, _winograd.F2x2)
    if groups == 1:  # plain or banded im2col: the bands' products summed
        windows = _windows(padded, window, (oh, ow))

        def compute(bands: Sequence[tuple[int, int]]) -> np.ndarray:
            dw = np.zeros((o, c * kh * kw), dtype=padded.dtype)
            for r0, r1 in bands:
                cols = recycled((c, kh, kw, r1 - r0, ow, n), padded.dtype)
                np.copyto(cols, windows[:, :, :, r0:r1])
                dw += g[:, r0:r1].reshape(o, -1) @ cols.reshape(c * kh * kw, -1).T
                del cols  # its memory serves the next band
            return dw

        shares = _parallel.split(
            _bands(algorithm, oh, c * kh * kw * ow * n * padded.itemsize), compute)
        return sum(shares[1:], shares[0]).reshape(weight_shape)
    cols = recycled((c, kh, kw, oh, ow, n), padded.dtype)
    np.copyto(cols, _windows(padded, window, (oh, ow)))
    cols = _as_groups(cols.reshape(-1, oh * ow * n), groups)
    g = g.reshape(groups, o // groups, -1)
    return np.matmul(g, cols.transpose(0, 2, 1)).reshape(weight_shape)


def _one_pass(window: Window, groups: int, in_channels: int, out_channels: int,
              size: tuple[int, int]) -> tuple[Window, str] | None:
    """The window and algorithm of the input gradient's convolution where
    ``_conv_grads`` computes both gradients in one pass (im2col chosen for it); None
    elsewhere."""
    flipped = _flipped(window, groups)
    if flipped is None:
        return None
    algorithm = _choose_algorithm(flipped, out_channels, in_channels, size, 1)
    return None if algorithm == "winograd" else (flipped, algorithm)


def _conv_grads(g: np.ndarray, x: np.ndarray, weight: np.ndarray, window: Window,
                groups: int) -> tuple[np.ndarray, np.ndarray] | None:
    """dx and dW of a stride-1 convolution in one pass over the output gradient's
    columns, or None where that does not apply (another stride, groups, or Winograd
    chosen for dx).

    dx is the convolution of g padded by k-1-p with the flipped kernel (see
    ``_conv_input_grad``); its columns G[(o, a, b), (h, w)] = g_pad[o, h + a, w + b]
    also give the weight gradient, with the input itself instead of its columns:
    dW[o, c, i, j] = Σ_(n,h,w) g[o, h, w]·x_pad[c, h + i, w + j]
                   = Σ_(n,u,v) g_pad[o, u + k-1-i, v + k-1-j]·x[c, u, v]
                   = (G·xᵀ)[(o, k-1-i, k-1-j), c]      (u, v: the input's pixels).
    So each band of G serves both products while it is in the cache, and dW needs no
    im2col copy of the input of its own.
    """
    o, c, (kh, kw), size = g.shape[1], x.shape[1], window.kernel, tuple(x.shape[2:])
    plan = _one_pass(window, groups, c, o, size)
    if plan is None:
        return None
    flipped, algorithm = plan
    stored = _batch_innermost(x).transpose(1, 2, 3, 0)  # (C, H, W, N)
    dx, product = _flipped_convolution(g, weight, flipped, size, algorithm, correlate=stored)
    dw = product.reshape(o, kh, kw, c)[:, ::-1, ::-1].transpose(0, 3, 1, 2)
    return dx.transpose(3, 0, 1, 2), np.ascontiguousarray(dw)


class Conv2d(Function):
    """y = W ⋆ x + b: one matrix product per group after im2col, or Winograd's
    transformed tiles (see "algorithms" above)."""

    rule = "dx = conv2d(pad(g), flip(W)ᵀ) (or col2im(Wᵀ·g)), dW = g·im2col(x)ᵀ, " \
           "db = Σ_(n,h,w) g"
    formula = ("y = W ⋆ x + b, cross-correlation of NCHW images (stride, padding, dilation, "
               "groups), computed as W·im2col(x) + b or by Winograd's F(2×2, 3×3)")
    domain = "the kernel fits in the padded input"

    def __init__(self, window: Window, groups: int) -> None:
        self.window, self.groups = window, groups

    def __call__(self, x: Tensor, weight: Tensor, *bias: Tensor) -> Tensor:
        # Keep the padded input for dW, unless dW will come from x itself (both
        # gradients in one pass, ``_conv_grads``): then its memory serves later layers.
        self.keep_padded = not (
            _GradMode.enabled and x.requires_grad and weight.requires_grad
            and _one_pass(self.window, self.groups, x.shape[1], weight.shape[0],
                          x.shape[2:]) is not None)
        return super().__call__(x, weight, *bias)

    def forward(self, x, weight, bias=None):
        # the padded input kept for dW is dropped after the first backward (made again
        # from x if ever needed again)
        y, padded = _conv_forward(x, weight, bias, self.window, self.groups)
        self.padded = padded if self.keep_padded else None
        return y

    def backward(self, g):
        x, weight = self.inputs[0], self.inputs[1]
        needs = self.needs_input_grad
        padded, self.padded = self.padded, None
        both = None
        if needs[0] and needs[1] and not _GradMode.enabled:  # both in one pass
            both = _conv_grads(g.data, x.data, weight.data, self.window, self.groups)
        if both is not None:
            gx, gw = Tensor._wrap(both[0]), Tensor._wrap(both[1])
        else:
            gx = Conv2dInputGrad(self.window, self.groups, x.shape)(g, weight) \
                if needs[0] else None
            gw = Conv2dWeightGrad(self.window, self.groups, weight.shape, padded)(x, g) \
                if needs[1] else None
        if len(self.inputs) == 2:
            return gx, gw
        gb = None
        if needs[2] and _GradMode.enabled:  # create_graph: a recorded sum
            gb = g.sum(axis=(0, 2, 3))
        elif needs[2]:  # the hot path: db = Σ_(n,h,w) g as a matrix-vector product
            stored = _batch_innermost(g.data).transpose(1, 2, 3, 0)  # (O, OH, OW, N)
            gb = Tensor._wrap(_sum_rows(stored.reshape(stored.shape[0], -1).T))
        return gx, gw, gb


class Conv2dInputGrad(Function):
    """The transposed convolution dx of (g, W): the input's gradient.

    It is linear in g and in W: ⟨h, dx⟩ = ⟨conv2d(h, W), g⟩, hence its own backward.
    """

    rule = "d/dg = conv2d(h, W), d/dW = weight-gradient(h, g) for upstream h"
    formula = ("dx = the transposed convolution of g (a convolution's input gradient): "
               "conv2d(pad(g), flip(W)ᵀ) for stride 1, col2im(Wᵀ·g) otherwise")

    def __init__(self, window: Window, groups: int, input_shape: tuple[int, ...]) -> None:
        self.window, self.groups, self.input_shape = window, groups, input_shape

    def forward(self, g, weight):
        return _conv_input_grad(g, weight, self.input_shape, self.window, self.groups)

    def backward(self, h):
        g, weight = self.inputs
        needs = self.needs_input_grad
        gg = Conv2d(self.window, self.groups)(h, weight) if needs[0] else None
        gw = Conv2dWeightGrad(self.window, self.groups, weight.shape)(h, g) \
            if needs[1] else None
        return gg, gw


class Conv2dWeightGrad(Function):
    """The weight's gradient dW = g·im2col(x)ᵀ of (x, g).

    Linear in x and in g: ⟨H, dW⟩ = ⟨conv2d(x, H), g⟩, hence its own backward.
    """

    rule = "d/dx = conv-transpose(g, H), d/dg = conv2d(x, H) for upstream H"
    formula = "dW = g·im2col(x)ᵀ (a convolution's weight gradient)"

    def __init__(self, window: Window, groups: int, weight_shape: tuple[int, ...],
                 padded: np.ndarray | None = None) -> None:
        self.window, self.groups, self.weight_shape = window, groups, weight_shape
        self.padded = padded  # x padded, stored (C, Hp, Wp, N), when the forward made it

    def forward(self, x, g):
        padded = self.padded if self.padded is not None else \
            _pad_stored(x, self.window, g.shape[2:])
        self.padded = None
        return _conv_weight_grad(padded, g, self.weight_shape, self.window, self.groups)

    def backward(self, h):
        x, g = self.inputs
        needs = self.needs_input_grad
        gx = Conv2dInputGrad(self.window, self.groups, x.shape)(g, h) if needs[0] else None
        gg = Conv2d(self.window, self.groups)(x, h) if needs[1] else None
        return gx, gg


# --------------------------------------------------------------------------- im2col
class Im2Col(Function):
    """The textbook's im2col: (N, C, H, W) → (N·OH·OW, C·kh·kw), one row per window."""

    rule = "each pixel is copied into the rows of its windows: dx adds those rows' " \
           "gradients back (col2im)"
    formula = "every kh×kw receptive field of x as a row: (N·OH·OW, C·kh·kw)"

    def __init__(self, window: Window) -> None:
        self.window = window

    def forward(self, x):
        self.input_shape = x.shape
        cols = _unfold(x, self.window)
        c, kh, kw, oh, ow, n = cols.shape
        # the textbook's order: rows (n, oh, ow), columns (c, i, j)
        rows = cols.reshape(c * kh * kw, oh, ow, n).transpose(3, 1, 2, 0)
        return rows.reshape(n * oh * ow, c * kh * kw)

    def backward(self, g):
        return Col2Im(self.window, self.input_shape)(g)


class Col2Im(Function):
    """The textbook's col2im: add every row back onto the pixels of its window."""

    rule = "each row was added onto its window's pixels: d(row) reads the gradient " \
           "there (im2col)"
    formula = "every row added back onto the pixels of its window: (N, C, H, W)"

    def __init__(self, window: Window, input_shape: tuple[int, ...]) -> None:
        self.window, self.input_shape = window, input_shape

    def forward(self, col):
        n, c = self.input_shape[:2]
        oh, ow = self.window.output_size(self.input_shape, "col2im")
        kh, kw = self.window.kernel
        cols = col.reshape(n, oh, ow, c, kh, kw).transpose(3, 4, 5, 1, 2, 0)
        return _fold(cols, self.input_shape, self.window)

    def backward(self, g):
        return Im2Col(self.window)(g)


# --------------------------------------------------------------------------- functions
def _check_images(x: Tensor, op: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"{op}: expected a batch of images of shape (N, C, H, W), got a "
                         f"tensor of shape {x.shape}"
                         + ("; add the batch axis with x.unsqueeze(0)" if x.ndim == 3 else ""))


Padding = Pair | str | Sequence[int]  # conv2d's: also (left, right, top, bottom), 'same', 'valid'


def conv_padding(padding: Padding, kernel: Pair, stride: Pair = 1, dilation: Pair = 1,
                 op: str = "conv2d") -> tuple[int, int, int, int]:
    """A convolution's ``padding`` as (left, right, top, bottom), the order of ``F.pad``.

    ``padding`` is an int (all four sides), a (height, width) pair (top and bottom,
    left and right), a 4-tuple (left, right, top, bottom) as ``F.pad`` takes it,
    ``'valid'`` (none) or ``'same'`` (stride 1 only: the output has the input's size;
    the dilation·(k - 1) padded places are split with the odd one on the right or at
    the bottom, as in PyTorch).
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding != "same":
            raise ValueError(f"{op}: padding must be an int or a pair of ints (height, "
                             f"width), a 4-tuple (left, right, top, bottom), 'same' or "
                             f"'valid'; got {padding!r}")
        window = Window.make(kernel, stride, 0, dilation, op)
        if window.stride != (1, 1):
            raise ValueError(f"{op}: padding='same' needs stride 1 (a strided convolution "
                             f"cannot keep the input's size), got stride {window.stride}; "
                             f"give the padding as numbers instead")
        (th, tw) = (s - 1 for s in window.span())  # the places to add along each axis
        return (tw // 2, tw - tw // 2, th // 2, th - th // 2)
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        if not all(isinstance(p, (int, np.integer)) and not isinstance(p, bool)
                   for p in padding):
            raise TypeError(f"{op}: a 4-tuple padding must be ints (left, right, top, "
                            f"bottom), got {padding!r}")
        if min(padding) < 0:
            raise ValueError(f"{op}: padding must be at least 0 on every side, got "
                             f"{tuple(padding)} (left, right, top, bottom)")
        return tuple(int(p) for p in padding)
    try:
        ph, pw = _pair(padding, "padding", op, 0)
    except TypeError:
        raise TypeError(f"{op}: padding must be an int or a pair of ints (height, width), "
                        f"a 4-tuple (left, right, top, bottom), 'same' or 'valid'; got "
                        f"{padding!r}") from None
    return (pw, pw, ph, ph)


def conv2d(x: Any, weight: Tensor, bias: Tensor | None = None, stride: Pair = 1,
           padding: Padding = 0, dilation: Pair = 1, groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation, as in every deep-learning library).

    ``x`` is (N, C, H, W), ``weight`` (O, C/groups, kh, kw), ``bias`` (O,). The output
    is (N, O, OH, OW) with OH = (H + top + bottom - dilation·(kh - 1) - 1) // stride + 1.
    ``stride`` and ``dilation`` are ints or (height, width) pairs; ``padding`` is an
    int, a (height, width) pair, a (left, right, top, bottom) 4-tuple as ``F.pad``
    takes it, 'valid' (0) or 'same' (stride 1: the output keeps the input's size; see
    ``conv_padding``). ``groups`` splits the channels into independent convolutions.
    """
    weight = as_tensor(weight)
    x = as_tensor(x, like=weight)
    _check_images(x, "conv2d")
    if x.dtype.kind != "f" and weight.dtype.kind == "f":
        x = x.astype(weight.dtype)  # integer pixels: compute in the weight's precision
    elif x.dtype != weight.dtype:
        raise TypeError(f"conv2d: the input has dtype {x.dtype} but the weight has "
                        f"{weight.dtype}; convert one of them, e.g. "
                        f"x.astype('{weight.dtype}')")
    if weight.ndim != 4:
        raise ValueError(f"conv2d: the weight must have shape (out_channels, "
                         f"in_channels/groups, kh, kw), got {weight.shape}")
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"conv2d: groups must be a positive int, got {groups!r}")
    out_channels, group_channels = weight.shape[:2]
    if x.shape[1] % groups or out_channels % groups:
        raise ValueError(f"conv2d: groups={groups} must divide both the input's "
                         f"{x.shape[1]} channels (input {x.shape}) and the weight's "
                         f"{out_channels} output channels (weight {weight.shape})")
    if x.shape[1] != group_channels * groups:
        raise ValueError(
            f"conv2d: the input of shape {x.shape} has {x.shape[1]} channels, but the "
            f"weight of shape {weight.shape} with groups={groups} expects "
            f"{group_channels * groups} (weight.shape[1] × groups)")
    left, right, top, bottom = conv_padding(padding, weight.shape[2:], stride, dilation)
    if left != right or top != bottom:  # uneven: zero-pad first, then convolve unpadded
        x = pad(x, (left, right, top, bottom))
        left = right = top = bottom = 0
    window = Window.make(weight.shape[2:], stride, (top, left), dilation, "conv2d")
    window.output_size(x.shape, "conv2d")  # raises when the kernel does not fit
    if bias is None:
        return Conv2d(window, int(groups))(x, weight)
    bias = as_tensor(bias, like=weight)
    if bias.shape != (out_channels,):
        raise ValueError(f"conv2d: the bias must have shape ({out_channels},) for a weight "
                         f"of shape {weight.shape}, got {bias.shape}")
    return Conv2d(window, int(groups))(x, weight, bias)


def im2col(x: Any, kh: int, kw: int, stride: Pair = 1, padding: Pair = 0,
           dilation: Pair = 1) -> Tensor:
    """Unfold every kh×kw receptive field of (N, C, H, W) images into a row.

    The result is (N·OH·OW, C·kh·kw): rows ordered (n, oh, ow), columns (c, i, j), so
    ``im2col(x, kh, kw) @ W.reshape(O, -1).T`` is the convolution (as rows (n, oh, ow)
    of its O channels). Differentiable; its derivative is ``col2im``.
    """
    x = as_tensor(x)
    _check_images(x, "im2col")
    window = Window.make((kh, kw), stride, padding, dilation, "im2col")
    window.output_size(x.shape, "im2col")
    return Im2Col(window)(x)


def col2im(col: Any, input_shape: Sequence[int], kh: int, kw: int, stride: Pair = 1,
           padding: Pair = 0, dilation: Pair = 1) -> Tensor:
    """The adjoint of ``im2col``: add every row of ``col`` back onto the pixels of its
    window, giving an array of ``input_shape`` (N, C, H, W). Pixels inside several
    windows receive the sum, so ``col2im(im2col(x))`` is not ``x`` but ``x`` times the
    number of windows covering each pixel."""
    col = as_tensor(col)
    input_shape = tuple(int(n) for n in input_shape)
    if len(input_shape) != 4:
        raise ValueError(f"col2im: input_shape must be (N, C, H, W), got {input_shape}")
    window = Window.make((kh, kw), stride, padding, dilation, "col2im")
    oh, ow = window.output_size(input_shape, "col2im")
    n, c = input_shape[:2]
    expected = (n * oh * ow, c * kh * kw)
    if col.shape != expected:
        raise ValueError(f"col2im: for images of shape {input_shape} and a {kh}×{kw} kernel "
                         f"the columns must have shape {expected} (N·OH·OW, C·kh·kw), "
                         f"got {col.shape}")
    return Col2Im(window, input_shape)(col)
