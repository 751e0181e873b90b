"""``pad``: widen (or, with negative widths, crop) the last axes of a tensor.

The widths are given as ``torch.nn.functional.pad`` takes them, last axis first:
``(left, right)`` pads the last axis, ``(left, right, top, bottom)`` the last two, and
so on. The new places are filled according to ``mode``:

* ``'constant'``: with ``value`` (0 by default);
* ``'reflect'``: with the mirror image about the edge, the edge itself not repeated
  (``[a b c d]`` padded by 2 gives ``c b [a b c d] c b``);
* ``'replicate'``: with the edge value repeated (``a a [a b c d] d d``);
* ``'circular'``: with the values from the other end (``c d [a b c d] a b``; when
  the other side is cropped, from the part that is kept, as in torch).

A negative width removes that many places from that side, in every mode.

Output position j of a padded axis reads input position s = j - left; constant mode
fills the s outside [0, n), the other modes map s back into [0, n): reflect by
s ↦ -s or 2(n-1) - s, replicate by clipping, circular by s mod n.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.tensor import Function, Tensor, as_tensor

__all__ = ["pad"]

MODES = ("constant", "reflect", "replicate", "circular")


class Pad(Function):
    """Constant padding: the input placed inside a larger array of ``value``; negative
    widths crop. Linear in x, and its adjoint is the same operation with every width
    negated (what was added is cut off, what was cut off comes back as 0)."""

    rule = "dx = g with the padding cut off (and the cropped places 0): pad(g, -widths)"
    formula = "y = x inside a larger array of the fill value; negative widths crop"

    def __init__(self, widths: tuple[tuple[int, int], ...], value: float = 0.0) -> None:
        self.widths, self.value = widths, value  # (before, after) for every axis

    def forward(self, x):
        out_shape = tuple(n + a + b for n, (a, b) in zip(x.shape, self.widths))
        out = np.full(out_shape, self.value, dtype=x.dtype)
        # the part of x that survives, and where it lands in the output
        source = tuple(slice(max(-a, 0), n - max(-b, 0)) for n, (a, b) in
                       zip(x.shape, self.widths))
        target = tuple(slice(max(a, 0), m - max(b, 0)) for m, (a, b) in
                       zip(out_shape, self.widths))
        out[target] = x[source]
        return out

    def backward(self, g):
        return Pad(tuple((-a, -b) for a, b in self.widths))(g)


def _source_index(n: int, before: int, after: int, mode: str) -> np.ndarray:
    """For each output position of one padded axis, the input position it copies."""
    s = np.arange(-before, n + after)
    if mode == "reflect":
        s = np.abs(s)
        return np.where(s >= n, 2 * (n - 1) - s, s)
    if mode == "replicate":
        return np.clip(s, 0, n - 1)
    # circular: wrapped around within the part that is kept (torch's rule when the
    # other side is cropped), positions lo..hi-1 of the input
    lo, hi = max(-before, 0), n - max(-after, 0)
    return lo + (s - lo) % (hi - lo) if s.size else s


class PadCopy(Function):
    """Reflect, replicate or circular padding: every output value is a copy of one
    input value, y[..., j] = x[..., index[j]] along each padded axis."""

    rule = "dx[i] = Σ g[j] over the output positions j that copy x[i]"
    formula = "y[..., j] = x[..., index[j]] along each padded axis (reflect, replicate, " \
              "circular)"

    def __init__(self, indices: dict[int, np.ndarray]) -> None:
        self.indices = indices  # axis -> source position of every output position

    def forward(self, x):
        self.input_shape = x.shape
        for axis, index in self.indices.items():
            x = np.take(x, index, axis=axis)
        return x

    def backward(self, g):
        return PadCopyAdjoint(self.indices, self.input_shape)(g)


class PadCopyAdjoint(Function):
    """The adjoint of ``PadCopy``: add every output position's gradient onto the input
    position it was copied from (its own backward is ``PadCopy`` again)."""

    rule = "adds h[j] onto position index[j]: d/dh reads the upstream gradient there"
    formula = "dx[index[j]] += g[j] (the backward of reflect/replicate/circular padding)"

    def __init__(self, indices: dict[int, np.ndarray], input_shape: tuple[int, ...]) -> None:
        self.indices, self.input_shape = indices, input_shape

    def forward(self, g):
        for axis, index in reversed(self.indices.items()):
            moved = np.moveaxis(g, axis, 0)
            out = np.zeros((self.input_shape[axis],) + moved.shape[1:], dtype=g.dtype)
            np.add.at(out, index, moved)
            g = np.moveaxis(out, 0, axis)
        return g

    def backward(self, h):
        return PadCopy(self.indices)(h)


def _widths(padding: Any, ndim: int, shape: tuple[int, ...]) -> list[tuple[int, int]]:
    """``padding`` (last axis first, as torch) as (before, after) per padded axis, in
    the order of the axes (the first padded axis first)."""
    if not isinstance(padding, (tuple, list)) or not all(
            isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in padding):
        raise TypeError(f"pad: padding must be a tuple of ints (left, right, top, bottom, "
                        f"...: the last axis first), got {padding!r}")
    if len(padding) % 2:
        raise ValueError(f"pad: padding must have an even length, a (before, after) pair "
                         f"per axis, last axis first; got {len(padding)} values {padding!r}")
    if len(padding) > 2 * ndim:
        raise ValueError(f"pad: padding {tuple(padding)} names {len(padding) // 2} axes, "
                         f"but the input of shape {shape} has only {ndim}")
    pairs = [(int(padding[i]), int(padding[i + 1])) for i in range(0, len(padding), 2)]
    return pairs[::-1]


def pad(x: Any, padding: Sequence[int], mode: str = "constant",
        value: float | None = None) -> Tensor:
    """``x`` with its last ``len(padding) // 2`` axes widened, as
    ``torch.nn.functional.pad``: ``padding`` is (left, right) for the last axis, then
    (top, bottom) for the one before, and so on; negative widths crop.

    ``mode`` is 'constant' (filled with ``value``, 0 by default), 'reflect' (the mirror
    image, edge not repeated: a width must be less than the axis's size), 'replicate'
    (the edge value repeated) or 'circular' (wrapped around from the other end: a width
    may be at most the axis's size).
    """
    x = as_tensor(x)
    if mode not in MODES:
        raise ValueError(f"pad: mode must be one of {MODES}, got {mode!r}")
    if value is not None and mode != "constant":
        raise ValueError(f"pad: value={value!r} is only used by mode='constant', not by "
                         f"mode={mode!r}")
    pairs = _widths(padding, x.ndim, x.shape)
    first = x.ndim - len(pairs)  # the first padded axis
    for axis, (before, after) in enumerate(pairs, start=first):
        n = x.shape[axis]
        if n + before + after < 0 or (mode == "constant" and (-before > n or -after > n)):
            raise ValueError(f"pad: padding ({before}, {after}) of axis {axis} crops more "
                             f"than its {n} places (input of shape {x.shape})")
        if mode == "constant" or n + before + after == 0 or max(before, after) <= 0:
            continue  # nothing to fill
        # reflect reads up to n-1 places inward, circular wraps within the kept part
        kept = n - max(-before, 0) - max(-after, 0)
        limit = {"reflect": n - 1, "replicate": None, "circular": kept}[mode]
        if n == 0 or (limit is not None and max(before, after) > limit):
            allowed = "nothing: the axis is empty" if n == 0 else \
                f"at most {limit} (the axis keeps {kept} of its {n} places" + \
                (", and the edge is not repeated)" if mode == "reflect" else ")")
            raise ValueError(f"pad: mode={mode!r} cannot pad axis {axis} by "
                             f"({before}, {after}): each width can be {allowed}; "
                             f"input of shape {x.shape}")
    if mode == "constant":
        fill = 0.0 if value is None else value
        if isinstance(fill, bool) or not isinstance(fill, (int, float, np.integer,
                                                          np.floating)):
            raise TypeError(f"pad: value must be a number, got {value!r}")
        widths = ((0, 0),) * first + tuple(pairs)
        if not any(a or b for a, b in widths):
            return x
        return Pad(widths, fill)(x)
    indices = {axis: _source_index(x.shape[axis], before, after, mode)
               for axis, (before, after) in enumerate(pairs, start=first)}
    return PadCopy(indices)(x)
