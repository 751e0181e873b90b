"""Shape operations and indexing. They move values around without changing them, so
their backward moves the gradient back to where each value came from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from chainrule.ops._checks import normalize_axis, normalize_single_axis
from chainrule.tensor import Function, Tensor, as_tensor


class Reshape(Function):
    saves_tensors = False  # the backward needs only shapes and indices
    rule = "reshape the gradient back to the input's shape"
    formula = "y = x with a new shape of the same size"

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, x):
        self.input_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, g):
        return g.reshape(self.input_shape)


class Transpose(Function):
    saves_tensors = False  # the backward needs only shapes and indices
    rule = "transpose the gradient back with the inverse permutation"
    formula = "y = x with its axes permuted"

    def __init__(self, axes: tuple[int, ...]) -> None:
        self.axes = axes

    def forward(self, x):
        return x.transpose(self.axes)

    def backward(self, g):
        return transpose(g, tuple(np.argsort(self.axes)))


def _is_basic(index: Any) -> bool:
    """True for slices, ints, None and Ellipsis only: no element is selected twice."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (slice, int, np.integer))
               for p in parts)


class GetItem(Function):
    saves_tensors = False  # the backward needs only shapes and indices
    rule = "scatter the gradient back to the selected positions (adding repeats)"
    formula = "y = x[index] (slices, ints, integer and boolean arrays)"
    special = "an element selected several times collects the sum of their gradients"

    def __init__(self, index: Any) -> None:
        self.index = index

    def forward(self, x):
        self.input_shape = x.shape
        return x[self.index]

    def backward(self, g):
        return ScatterAdd(self.index, self.input_shape)(g)


class ScatterAdd(Function):
    """Gradient of indexing: zeros of the input's shape with ``g`` added at ``index``."""

    saves_tensors = False  # the backward needs only shapes and indices
    rule = "select the gradient at the scattered positions"
    formula = "y = zeros(shape) with x added at index (repeated positions add up)"

    def __init__(self, index: Any, shape: tuple[int, ...]) -> None:
        self.index, self.shape = index, shape

    def forward(self, g):
        out = np.zeros(self.shape, dtype=g.dtype)
        if _is_basic(self.index):
            out[self.index] = g  # basic indexing never repeats a position
        else:
            np.add.at(out, self.index, g)  # repeated indices accumulate
        return out

    def backward(self, gg):
        return GetItem(self.index)(gg)


class Concatenate(Function):
    saves_tensors = False  # the backward needs only shapes and indices
    rule = "split the gradient back into the pieces"
    formula = "y = x₁, x₂, … joined along an existing axis"

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, *xs):
        self.bounds = np.cumsum([0] + [x.shape[self.axis] for x in xs])
        return np.concatenate(xs, axis=self.axis)

    def backward(self, g):
        lead = (slice(None),) * self.axis
        return tuple(g[lead + (slice(int(a), int(b)),)] if need else None
                     for a, b, need in zip(self.bounds[:-1], self.bounds[1:],
                                           self.needs_input_grad))


# --------------------------------------------------------------------------- functions
def reshape(x: Tensor, *shape: Any) -> Tensor:
    """``x`` with a new shape of the same size (one entry may be -1)."""
    x = as_tensor(x)
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    shape = tuple(int(n) for n in shape)
    if x.shape == shape:
        return x
    try:
        return Reshape(shape)(x)
    except ValueError:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} "
                         f"elements) into {shape}") from None


def transpose(x: Tensor, axes: Sequence[int] | None = None) -> Tensor:
    """Permute axes (reverse them when ``axes`` is None), like ``np.transpose``."""
    x = as_tensor(x)
    if axes is None:
        axes = tuple(range(x.ndim))[::-1]
    given = tuple(axes)
    axes = tuple(int(a) % x.ndim if x.ndim else 0 for a in given)
    # check the range before wrapping: axis 5 of a 3-d tensor must not pass as axis 2
    if sorted(axes) != list(range(x.ndim)) or not all(-x.ndim <= a < x.ndim for a in given):
        raise ValueError(f"transpose: axes {given} are not a permutation of the "
                         f"{x.ndim} axes of a tensor of shape {x.shape}")
    return Transpose(axes)(x)


def permute(x: Tensor, *axes: Any) -> Tensor:
    """Reorder axes: ``x.permute(0, 2, 1)`` (PyTorch's name for ``transpose(x, axes)``)."""
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    return transpose(x, axes)


def swapaxes(x: Tensor, axis1: int, axis2: int) -> Tensor:
    """Exchange two axes."""
    x = as_tensor(x)
    a = normalize_single_axis(axis1, x.shape, "swapaxes")
    b = normalize_single_axis(axis2, x.shape, "swapaxes")
    axes = list(range(x.ndim))
    if axes:  # (a 0-d tensor has nothing to swap)
        axes[a], axes[b] = axes[b], axes[a]
    return Transpose(tuple(axes))(x)


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge axes ``start_dim``..``end_dim`` into one (all of them by default)."""
    x = as_tensor(x)
    if x.ndim == 0:
        return reshape(x, (1,))
    start = normalize_single_axis(start_dim, x.shape, "flatten")
    end = normalize_single_axis(end_dim, x.shape, "flatten")
    return reshape(x, x.shape[:start] + (-1,) + x.shape[end + 1:])


def squeeze(x: Tensor, axis: int | Sequence[int] | None = None) -> Tensor:
    """Remove axes of size 1 (all of them, or those in ``axis``); a named axis of
    another size is left as it is, as in PyTorch (NumPy raises instead)."""
    x = as_tensor(x)
    axes = normalize_axis(axis, x.shape, "squeeze")
    if axes is None:
        axes = tuple(range(x.ndim))
    axes = tuple(a for a in axes if x.shape[a] == 1)
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in axes))


def unsqueeze(x: Tensor, axis: int) -> Tensor:
    """Insert an axis of size 1 at position ``axis``."""
    x = as_tensor(x)
    if not -x.ndim - 1 <= axis <= x.ndim:
        raise ValueError(f"unsqueeze: axis {axis} is out of range for a tensor of shape "
                         f"{x.shape} (valid: {-x.ndim - 1}..{x.ndim})")
    axis = axis % (x.ndim + 1)
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def expand(x: Tensor, *shape: Any) -> Tensor:
    """Broadcast to ``shape`` (PyTorch's name; -1 keeps a size)."""
    from chainrule.ops.reduction import broadcast_to

    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    lead = len(shape) - x.ndim
    if -1 in shape[:lead]:  # x.shape[i - lead] would silently wrap around
        raise ValueError(f"expand: -1 (keep the size) cannot be used for the new leading "
                         f"axes of {shape}: a tensor of shape {x.shape} has no size there")
    shape = tuple(x.shape[i - lead] if n == -1 else n for i, n in enumerate(shape))
    return broadcast_to(x, shape)


def getitem(x: Tensor, index: Any) -> Tensor:
    """``x[index]``: slices, ints, integer and boolean arrays (gradients scattered back,
    repeated indices accumulated)."""
    x = as_tensor(x)
    if isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    elif isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, list):
        index = np.asarray(index)
    try:
        return GetItem(index)(x)
    except IndexError as error:
        raise IndexError(f"index {index!r} does not fit a tensor of shape {x.shape}: "
                         f"{error}") from None


def concatenate(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis (all other sizes must agree)."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("concatenate: needs at least one tensor")
    first = tensors[0]
    if first.ndim == 0:
        raise ValueError("concatenate: 0-d tensors have no axis to join along; use "
                         "stack() to make a 1-d tensor of them")
    a = normalize_single_axis(axis, first.shape, "concatenate")
    for i, t in enumerate(tensors):
        if t.ndim != first.ndim or t.shape[:a] + t.shape[a + 1:] != \
                first.shape[:a] + first.shape[a + 1:]:
            raise ValueError(
                f"concatenate along axis {axis}: tensor {i} has shape {t.shape}, which does "
                f"not match tensor 0's shape {first.shape} outside that axis")
    return Concatenate(a)(*tensors)


cat = concatenate


def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join same-shape tensors along a new axis."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: tensor {i} has shape {t.shape}, tensor 0 has "
                             f"{tensors[0].shape}; all must be equal")
    return concatenate([unsqueeze(t, axis) for t in tensors], axis)


def split(x: Tensor, indices_or_sections: int | Sequence[int], axis: int = 0) -> list[Tensor]:
    """Split into equal sections (an int) or at the given indices, like ``np.split``."""
    x = as_tensor(x)
    if x.ndim == 0:
        raise ValueError("split: a 0-d tensor has no axis to split")
    a = normalize_single_axis(axis, x.shape, "split")
    n = x.shape[a]
    if isinstance(indices_or_sections, (int, np.integer)):
        if indices_or_sections <= 0 or n % indices_or_sections:
            raise ValueError(f"split: axis {axis} of size {n} cannot be split into "
                             f"{indices_or_sections} equal sections")
        step = n // indices_or_sections
        cuts = list(range(step, n, step))
    else:
        cuts = list(indices_or_sections)
    bounds = [0, *cuts, n]
    lead = (slice(None),) * a
    return [getitem(x, lead + (slice(lo, hi),)) for lo, hi in zip(bounds[:-1], bounds[1:])]
