"""Reductions (sum, mean, max, min, var) and the broadcasting pair sum_to/broadcast_to.

``sum_to`` is how the engine undoes broadcasting, and ``broadcast_to`` is its
derivative: summing copies a gradient back to every summed element.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence

import numpy as np

from chainrule.ops._checks import normalize_axis
from chainrule.tensor import Function, Tensor, as_tensor

Axis = int | Sequence[int] | None


def _kept_shape(shape: tuple[int, ...], axes: tuple[int, ...] | None) -> tuple[int, ...]:
    """``shape`` with the reduced axes set to 1 (the keepdims shape)."""
    if axes is None:
        return (1,) * len(shape)
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    saves_tensors = False  # the backward needs only shapes
    rule = "d(Σx)/dxᵢ = 1: the gradient is copied to every summed element"
    formula = "y = Σ x over the given axes"

    def __init__(self, axes: tuple[int, ...] | None, keepdims: bool) -> None:
        self.axes, self.keepdims = axes, keepdims

    def forward(self, x):
        self.input_shape = x.shape
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, g):
        if not self.keepdims:
            g = g.reshape(_kept_shape(self.input_shape, self.axes))
        return broadcast_to(g, self.input_shape)


class SumTo(Function):
    """Sum a broadcast array down to ``shape`` (the inverse of broadcasting)."""

    saves_tensors = False  # the backward needs only shapes
    rule = "d sum_to(x)/dx = 1: the gradient is copied back along the summed axes"
    formula = "y = x summed down to a shape (undoes broadcasting)"

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, x):
        self.input_shape = x.shape
        lead = x.ndim - len(self.shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, n in enumerate(self.shape) if n == 1 and x.shape[lead + i] != 1)
        y = x.sum(axis=axes, keepdims=True) if axes else x
        return y.reshape(self.shape) if lead else y

    def backward(self, g):
        return broadcast_to(g, self.input_shape)


class BroadcastTo(Function):
    saves_tensors = False  # the backward needs only shapes
    rule = "d broadcast(x)/dx: sum the gradient over the copies"
    formula = "y = x repeated along new or size-1 axes to a shape"

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, x):
        self.input_shape = x.shape
        return np.broadcast_to(x, self.shape)

    def explain_error(self, inputs, error):
        return ValueError(f"broadcast_to: a tensor of shape {inputs[0].shape} cannot be "
                          f"broadcast to {self.shape} (sizes must match or be 1, aligned "
                          "from the right)")

    def backward(self, g):
        return sum_to(g, self.input_shape)


class Extremum(Function):
    """max or min over axes. Ties share the gradient equally (like ``torch.amax``)."""

    rule = "d max(x)/dxᵢ = 1/k for the k elements equal to the maximum, else 0 (min alike)"
    formula = "y = max x (or min x) over the given axes"
    domain = "a non-empty x"
    special = "ties: the k equal extremes share the gradient, 1/k each (as torch.amax/amin)"

    def __init__(self, reduce: np.ufunc, axes: tuple[int, ...] | None, keepdims: bool):
        self.reduce, self.axes, self.keepdims = reduce, axes, keepdims

    @property
    def name(self) -> str:
        return self.reduce.__name__  # "max" or "min"

    def forward(self, x):
        y = self.reduce(x, axis=self.axes, keepdims=True)
        self.input_shape = x.shape
        self.winners = x == y  # where the extreme value was found
        return y if self.keepdims else np.squeeze(y, axis=self.axes)

    def backward(self, g):
        share = self.winners.astype(g.dtype)
        share /= share.sum(axis=self.axes, keepdims=True)
        if not self.keepdims:
            g = g.reshape(_kept_shape(self.input_shape, self.axes))
        return g * Tensor._wrap(share)


# --------------------------------------------------------------------------- functions
def sum(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Sum over ``axis`` (int, tuple, negative allowed; None sums everything)."""
    x = as_tensor(x)
    return Sum(normalize_axis(axis, x.shape, "sum"), keepdims)(x)


def mean(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis``: the sum divided by the number of summed elements."""
    x = as_tensor(x)
    axes = normalize_axis(axis, x.shape, "mean")
    count = x.size if axes is None else int(np.prod([x.shape[a] for a in axes]))
    return Sum(axes, keepdims)(x) * (1.0 / builtins.max(count, 1))


def var(x: Tensor, axis: Axis = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """Variance over ``axis`` with NumPy's default ``ddof=0`` (PyTorch's default
    ``unbiased=True`` is ``ddof=1``)."""
    x = as_tensor(x)
    axes = normalize_axis(axis, x.shape, "var")
    count = x.size if axes is None else int(np.prod([x.shape[a] for a in axes]))
    if count - ddof <= 0:
        raise ValueError(f"var: {count} element(s) along axis {axis} of a tensor of shape "
                         f"{x.shape} are too few for ddof={ddof}")
    centered = x - mean(x, axes, keepdims=True)
    return sum(centered * centered, axes, keepdims) * (1.0 / (count - ddof))


def max(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Largest value over ``axis``; tied maxima share the gradient equally."""
    x = as_tensor(x)
    _check_not_empty(x, "max")
    return Extremum(np.max, normalize_axis(axis, x.shape, "max"), keepdims)(x)


def min(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Smallest value over ``axis``; tied minima share the gradient equally."""
    x = as_tensor(x)
    _check_not_empty(x, "min")
    return Extremum(np.min, normalize_axis(axis, x.shape, "min"), keepdims)(x)


def _check_not_empty(x: Tensor, op: str) -> None:
    if x.size == 0:
        raise ValueError(f"{op}: the tensor of shape {x.shape} is empty")


def sum_to(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Sum ``x`` down to ``shape`` — how broadcasting is undone in backward."""
    shape = tuple(shape)
    if x.shape == shape:
        return x
    return SumTo(shape)(x)


def broadcast_to(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    """``x`` repeated along new or size-1 axes to ``shape`` (NumPy's broadcasting)."""
    x = as_tensor(x)
    shape = tuple(shape)
    if x.shape == shape:
        return x
    return BroadcastTo(shape)(x)
