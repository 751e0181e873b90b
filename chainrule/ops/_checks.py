"""Argument checks shared by the operations, with messages a learner can act on."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def normalize_axis(axis: int | Sequence[int] | None, shape: tuple[int, ...],
                   op: str) -> tuple[int, ...] | None:
    """``axis`` as a sorted tuple of non-negative ints, or None for "all axes".

    A 0-d tensor accepts axis 0 or -1, as in PyTorch; it has no real axis, so they
    name none: ``()`` (reducing over no axis leaves the value as it is).
    """
    if axis is None:
        return None
    # anything but a sequence is one axis (a non-int one is reported below)
    axes = tuple(axis) if isinstance(axis, (Sequence, np.ndarray)) else (axis,)
    ndim = len(shape)
    result = []
    for a in axes:
        if not isinstance(a, (int, np.integer)):
            raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {a!r}")
        span = max(ndim, 1)  # a 0-d tensor takes 0 and -1, like a 1-d one (PyTorch)
        if not -span <= a < span:
            raise ValueError(
                f"{op}: axis {a} is out of range for a tensor of shape {shape} "
                f"(valid axes: {-span}..{span - 1})"
            )
        if ndim:
            result.append(int(a) % ndim)
    if len(set(result)) != len(result):
        raise ValueError(f"{op}: axis {axis} names the same axis twice")
    return tuple(sorted(result))


def normalize_single_axis(axis: int, shape: tuple[int, ...], op: str) -> int | None:
    """One ``axis`` as a non-negative int; None for a 0-d tensor (see normalize_axis)."""
    axes = normalize_axis(axis, shape, op)
    assert axes is not None
    if len(axes) > 1:
        raise TypeError(f"{op}: axis must be a single int, got {axis!r}")
    return axes[0] if axes else None


def broadcast_error(op: str, a: tuple[int, ...], b: tuple[int, ...]) -> ValueError:
    """A ValueError explaining, dimension by dimension, why two shapes do not broadcast."""
    width = max(len(a), len(b))
    lines = [f"{op}: shapes {a} and {b} cannot be broadcast together.",
             "Broadcasting aligns shapes from the right; each pair of sizes must be equal "
             "or one of them 1:"]
    pad_a = (None,) * (width - len(a)) + a
    pad_b = (None,) * (width - len(b)) + b
    for i, (x, y) in enumerate(zip(pad_a, pad_b)):
        dim = i - width
        if x is None or y is None or x == y or x == 1 or y == 1:
            verdict = "ok"
        else:
            verdict = "MISMATCH"
        lines.append(f"  axis {dim:>3}: {'-' if x is None else x:>6} vs "
                     f"{'-' if y is None else y:<6} {verdict}")
    return ValueError("\n".join(lines))
