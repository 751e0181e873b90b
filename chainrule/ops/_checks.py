"""Argument checks shared by the operations, with messages a learner can act on."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def normalize_axis(axis: int | Sequence[int] | None, shape: tuple[int, ...],
                   op: str) -> tuple[int, ...] | None:
    """``axis`` as a sorted tuple of non-negative ints, or None for "all axes"."""
    if axis is None:
        return None
    # anything but a sequence is one axis (a non-int one is reported below)
    axes = tuple(axis) if isinstance(axis, (Sequence, np.ndarray)) else (axis,)
    ndim = len(shape)
    result = []
    for a in axes:
        if not isinstance(a, (int, np.integer)):
            raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {a!r}")
        if not -ndim <= a < max(ndim, 1) or (ndim == 0 and a not in (0, -1)):
            raise ValueError(
                f"{op}: axis {a} is out of range for a tensor of shape {shape} "
                f"(valid axes: {-ndim}..{ndim - 1})"
            )
        result.append(int(a) % ndim if ndim else 0)
    if len(set(result)) != len(result):
        raise ValueError(f"{op}: axis {axis} names the same axis twice")
    return tuple(sorted(result))


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
