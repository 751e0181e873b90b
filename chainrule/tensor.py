"""The core of chainrule: ``Tensor``, ``Function`` and the backward pass.

A ``Tensor`` wraps a NumPy array. Every operation applied to tensors that require
gradients is a ``Function``: it computes its output from the inputs' arrays
(``forward``) and remembers its inputs, so that ``backward`` can later turn the
gradient of the output into gradients of the inputs (local derivative times upstream
gradient). ``Tensor.backward`` visits the recorded graph in reverse topological order,
adds up the gradients of a value used in several places, and sums away broadcasting.

This module knows nothing of layers, optimisers or training; the operations
themselves live in ``chainrule.ops``.
"""

from __future__ import annotations

import contextlib
import itertools
import weakref
from collections.abc import Callable, Iterable, Sequence
from heapq import heappop, heappush
from typing import Any

import numpy as np

__all__ = [
    "Tensor",
    "Function",
    "no_grad",
    "enable_grad",
    "set_grad_enabled",
    "is_grad_enabled",
    "as_tensor",
    "grad",
]


# --------------------------------------------------------------------------- grad mode
class _GradMode:
    """Global switch: when off, operations record nothing (inference, optimiser steps)."""

    enabled: bool = True


def is_grad_enabled() -> bool:
    """True while operations are being recorded for backpropagation."""
    return _GradMode.enabled


class set_grad_enabled(contextlib.ContextDecorator):
    """Turn recording on or off inside a ``with`` block or a decorated function."""

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)

    def __enter__(self) -> None:
        self.previous = _GradMode.enabled
        _GradMode.enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        _GradMode.enabled = self.previous


class no_grad(set_grad_enabled):
    """Record nothing: ``with chainrule.no_grad(): ...`` or ``@chainrule.no_grad()``."""

    def __init__(self) -> None:
        super().__init__(False)


class enable_grad(set_grad_enabled):
    """Record operations again, e.g. inside a ``no_grad`` block."""

    def __init__(self) -> None:
        super().__init__(True)


# --------------------------------------------------------------------------- dtypes
_FLOAT_KINDS = "f"


def _to_array(data: Any, dtype: Any = None) -> np.ndarray:
    """Convert user data to an ndarray: Python floats and lists of floats become float32
    (as in PyTorch), Python ints int64, NumPy arrays keep their dtype."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray):
        return data if dtype is None else data.astype(dtype, copy=False)
    if isinstance(data, np.generic):
        return np.asarray(data, dtype=dtype)
    array = np.asarray(data, dtype=dtype)
    if dtype is None and array.dtype == np.float64:
        array = array.astype(np.float32)
    elif dtype is None and array.dtype.kind == "i":
        array = array.astype(np.int64, copy=False)
    elif array.dtype == object:
        raise TypeError(
            f"cannot make a Tensor from {type(data).__name__} holding objects; "
            "give numbers, (nested) lists of numbers or a NumPy array"
        )
    return array


# --------------------------------------------------------------------------- Tensor
class Tensor:
    """An n-dimensional array that remembers how it was computed.

    ``Tensor(data, requires_grad=False, dtype=None, name=None)`` accepts Python
    numbers, (nested) lists and NumPy arrays. Python floats and lists of floats become
    float32, Python ints int64; NumPy arrays keep their dtype unless ``dtype`` is given.
    Only floating-point tensors can require gradients.
    """

    __slots__ = ("data", "grad", "requires_grad", "creator", "name", "_retains_grad",
                 "__weakref__")
    # NumPy defers to our reflected operators: ``ndarray * Tensor`` -> ``Tensor.__rmul__``.
    __array_ufunc__ = None

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None,
                 name: str | None = None) -> None:
        self.data: np.ndarray = _to_array(data, dtype)
        self.grad: Tensor | None = None
        self.creator: Function | None = None
        self.name = name
        self._retains_grad = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, array: np.ndarray, requires_grad: bool = False) -> Tensor:
        """Fast constructor for results of operations: no conversion, no checks."""
        t = object.__new__(Tensor)
        t.data = array
        t.grad = None
        t.creator = None
        t.name = None
        t._retains_grad = False
        t.requires_grad = requires_grad
        return t

    # ------------------------------------------------------------------ attributes
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def is_leaf(self) -> bool:
        """A leaf was created by the user, not computed by an operation."""
        return self.creator is None

    @property
    def grad_fn(self) -> Function | None:
        """The operation that produced this tensor (None for leaves)."""
        return self.creator

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place; only floating-point tensors may require grad."""
        if requires_grad and self.data.dtype.kind not in _FLOAT_KINDS:
            raise TypeError(
                f"only floating-point tensors can require gradients, but this tensor has "
                f"dtype {self.data.dtype}; create it with dtype='float32' or 'float64'"
            )
        if not requires_grad and self.creator is not None:
            raise ValueError("requires_grad can only be switched off on leaf tensors; "
                             "use .detach() to cut a computed tensor from its graph")
        self.requires_grad = bool(requires_grad)
        return self

    def item(self) -> float | int | bool:
        """The single value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, this one has shape "
                             f"{self.shape} ({self.size} elements)")
        return self.data.item()

    def numpy(self) -> np.ndarray:
        """The underlying NumPy array (shared, not copied)."""
        return self.data

    def tolist(self) -> Any:
        return self.data.tolist()

    def detach(self) -> Tensor:
        """A tensor sharing the same data, cut from the graph (requires no grad)."""
        return Tensor._wrap(self.data)

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this intermediate tensor after ``backward`` (leaves always do)."""
        if not self.requires_grad:
            raise ValueError("retain_grad() on a tensor that does not require grad")
        self._retains_grad = True

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (same as ``t.grad = None``)."""
        self.grad = None

    def astype(self, dtype: Any) -> Tensor:
        """This tensor converted to ``dtype`` (differentiable between float types)."""
        from chainrule import ops
        return ops.astype(self, dtype)

    def float(self) -> Tensor:
        return self.astype(np.float32)

    def double(self) -> Tensor:
        return self.astype(np.float64)

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="Tensor(", precision=4)
        extras = []
        if self.data.dtype not in (np.float32, np.int64, np.bool_):
            extras.append(f"dtype={self.data.dtype}")
        if self.creator is not None:
            extras.append(f"grad_fn=<{type(self.creator).__name__}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        if self.name:
            extras.append(f"name={self.name!r}")
        return "Tensor(" + ", ".join([body, *extras]) + ")"

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __bool__(self) -> bool:
        return bool(self.data)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """``np.asarray(tensor)`` gives the data (NumPy's array protocol)."""
        if copy:
            return np.array(self.data, dtype=dtype)
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def __abs__(self) -> Tensor:
        from chainrule import ops
        return ops.abs(self)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    __hash__ = object.__hash__

    # ------------------------------------------------------------------ backward
    def backward(self, grad: Any = None, retain_graph: bool | None = None,
                 create_graph: bool = False, trace: bool = False) -> Any:
        """Backpropagate from this tensor: fill ``.grad`` of every leaf it depends on.

        ``grad`` is the gradient of the final result with respect to this tensor; it may
        be left out only when this tensor holds a single value (a loss). Gradients
        accumulate in ``.grad`` across calls. The graph is freed afterwards unless
        ``retain_graph`` (which defaults to ``create_graph``, as in PyTorch: the recorded
        gradients refer to the forward graph); ``create_graph`` records the backward pass
        itself so that gradients can be differentiated again. ``trace=True`` also records
        every step and returns it (a ``chainrule.explain.Trace``: print it); otherwise returns None.
        """
        if retain_graph is None:
            retain_graph = create_graph
        if trace:  # the same pass, with chainrule.explain's tracer attached
            from chainrule.explain import explain
            return explain(self, grad, retain_graph=retain_graph, create_graph=create_graph)
        run_backward(self, grad, retain_graph=retain_graph, create_graph=create_graph)
        return None

    # Operators and methods delegate to chainrule.ops (attached at the end of ops/).


def as_tensor(value: Any, like: Tensor | None = None) -> Tensor:
    """``value`` as a Tensor. Python numbers take the dtype of ``like`` so that a constant
    never promotes a float32 network to float64."""
    if isinstance(value, Tensor):
        return value
    if like is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        kind = like.data.dtype.kind
        if kind == "f" or (kind in "iu" and isinstance(value, int)):
            return Tensor._wrap(np.array(value, dtype=like.data.dtype))
    return Tensor(value)


# --------------------------------------------------------------------------- Function
_sequence = itertools.count()  # numbers recorded operations in the order they ran


class Function:
    """One operation of the graph: ``forward`` on arrays, ``backward`` on tensors.

    Subclasses implement

    * ``forward(self, *arrays) -> ndarray``: the value, computed with NumPy; anything
      the backward needs (a mask, an index) may be stored on ``self``;
    * ``backward(self, grad_output) -> Tensor | tuple[Tensor | None, ...]``: one
      gradient per input, written with chainrule operations so that it can itself be
      recorded (higher-order derivatives). ``self.inputs`` holds the input tensors,
      ``self.output`` the output tensor, ``self.needs_input_grad`` says which inputs
      need a gradient (return None for the others to save work).

    A gradient may have the broadcast shape of the output; the engine sums it down to
    the input's shape.
    """

    inputs: tuple[Tensor, ...] | None
    needs_input_grad: tuple[bool, ...]

    def __call__(self, *inputs: Tensor) -> Tensor:
        try:
            value = self.forward(*[x.data for x in inputs])
        except ValueError as error:  # NumPy's message, made specific by the operation
            better = self.explain_error(inputs, error)
            if better is None:
                raise
            raise better from None
        if not isinstance(value, np.ndarray):  # NumPy returns scalars for 0-d results
            value = np.asarray(value)
        if not _GradMode.enabled:
            return Tensor._wrap(value)
        needs = tuple([x.requires_grad for x in inputs])
        if True not in needs:
            return Tensor._wrap(value)
        out = Tensor._wrap(value, requires_grad=True)
        out.creator = self
        self.sequence_nr = next(_sequence)  # the backward pass goes newest first
        self.inputs = inputs
        self.needs_input_grad = needs
        # A weak reference: the output owns its creator, never the other way round, so
        # the graph has no reference cycles and is freed as soon as it is unused.
        self._output = weakref.ref(out)
        return out

    @property
    def output(self) -> Tensor:
        out = self._output()
        if out is None:  # only possible when the caller dropped the output tensor
            raise RuntimeError(f"the output of {type(self).__name__} no longer exists")
        return out

    def forward(self, *arrays: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def explain_error(self, inputs: Sequence[Tensor], error: ValueError) -> Exception | None:
        """A clearer error for a ValueError raised by ``forward`` (None keeps NumPy's)."""
        return None

    def backward(self, grad_output: Tensor) -> Tensor | tuple[Tensor | None, ...] | None:
        raise NotImplementedError

    # What docs/operators.md shows of each operation (generated by docs/update_docs.py):
    # ``rule``, a short statement of the local derivative (also shown by
    # chainrule.explain()); ``formula``, what forward computes; ``domain``, the inputs
    # where it is defined; ``special``, its kinks and the values the gradient takes
    # there by convention (empty: none).
    rule: str = ""
    formula: str = ""
    domain: str = "all real inputs"
    special: str = ""

    @property
    def name(self) -> str:
        return type(self).__name__.lower()


# --------------------------------------------------------------------------- backward pass
def topological_order(root: Tensor,
                      inputs_of: Callable[[Tensor], Iterable[Tensor]]) -> list[Tensor]:
    """``root`` and every tensor it was computed from, each after all of its inputs.

    ``inputs_of(t)`` names the tensors to follow from ``t``. An iterative depth-first
    search (no recursion), so a chain of 100,000 operations works.
    """
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:  # everything this node depends on is already in the order
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for x in inputs_of(node):
            if id(x) not in visited:
                stack.append((x, False))
    return order


def run_backward(root: Tensor, grad: Any = None, retain_graph: bool = False,
                 create_graph: bool = False, tracer: Any = None,
                 capture: Sequence[Tensor] | None = None) -> list[Tensor | None] | None:
    """The backward pass behind ``Tensor.backward`` (see there).

    Operations are processed newest first. Every operation was recorded after the
    operations that computed its inputs, so by the time one is processed, every use
    of its output has already sent its gradient (PyTorch's engine orders its work by
    the same sequence numbers). Gradients for a leaf are added to its ``.grad`` as
    they arrive.

    With ``capture``, the gradients of those tensors are returned instead of being
    accumulated into any ``.grad`` (this is ``chainrule.grad``). ``tracer``, when given,
    is told about every step (used by ``chainrule.explain``):
    ``tracer.node(tensor, grad, fn, input_grads)`` after each operation is processed
    (with ``fn=None`` when the root is a leaf) and
    ``tracer.summed(input, from_shape, to_shape)`` where broadcasting is summed away.
    """
    if not root.requires_grad:
        raise ValueError(
            "backward() called on a tensor that does not require grad: none of the "
            "tensors it was computed from has requires_grad=True (or it was computed "
            "under no_grad())"
        )
    if grad is None:
        if root.data.size != 1:
            raise ValueError(
                f"backward() without a gradient needs a single-value output (a loss), but "
                f"this tensor has shape {root.shape}; pass grad= of that shape, or reduce "
                "it first with .sum() or .mean()"
            )
        # d root/d root = 1 (np.array is several times cheaper than np.ones)
        grad_t = Tensor._wrap(np.array(1, dtype=root.data.dtype).reshape(root.data.shape))
    else:
        grad_t = grad if isinstance(grad, Tensor) else Tensor(np.asarray(grad,
                                                                         dtype=root.dtype))
        if grad_t.shape != root.shape:
            raise ValueError(f"backward(grad=...) needs a gradient of the output's shape "
                             f"{root.shape}, got {grad_t.shape}")

    captured: dict[int, Tensor] = {}
    capture_ids = None if capture is None else {id(t) for t in capture}
    # arrays already given to a leaf's .grad in this pass, or owned by the caller (grad=)
    handed_out: set[int] = set() if grad is None else {id(grad_t.data)}

    def keep(node: Tensor, g: Tensor) -> None:
        """``g`` reaches a leaf (or a retained or captured tensor): add it to ``.grad``."""
        if capture_ids is not None:
            if id(node) in capture_ids:
                previous = captured.get(id(node))
                captured[id(node)] = g if previous is None else previous + g
            return
        if node.grad is not None:  # accumulate, as in PyTorch
            node.grad = node.grad + g
            return
        if not create_graph and (g.data.base is not None or id(g.data) in handed_out):
            # never let two .grad share memory (or alias a read-only broadcast view):
            # in-place updates like clipping must stay local
            g = Tensor._wrap(g.data.copy())
        handed_out.add(id(g.data))
        node.grad = g

    fn = root.creator
    # recording is on only with create_graph (a plain try/finally: this runs once per
    # training step, and set_grad_enabled's context manager costs more)
    previous_mode, _GradMode.enabled = _GradMode.enabled, create_graph
    try:
        if fn is None:  # backward() on a leaf: its gradient is the seed itself
            keep(root, grad_t)
            if tracer is not None:
                tracer.node(root, grad_t, None, ())
            return None if capture is None else [captured.get(id(t)) for t in capture]
        # operations waiting to be processed: newest first (a heap on -sequence
        # number), each with its output and the gradient summed for it so far
        queue = [(-fn.sequence_nr, fn)]
        waiting: dict[Function, list] = {fn: [root, grad_t]}
        while queue:
            fn = heappop(queue)[1]
            node, g = waiting.pop(fn)
            if fn.inputs is None:
                raise RuntimeError(
                    "trying to backward through the graph a second time, but its "
                    "intermediate values were freed by the first backward(); call the "
                    "first backward(retain_graph=True) if you need to backpropagate twice"
                )
            if node._retains_grad or capture_ids is not None:
                keep(node, g)
            input_grads = fn.backward(g)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            for x, gx, need in zip(fn.inputs, input_grads, fn.needs_input_grad):
                if not need or gx is None:
                    continue
                x_data = x.data
                if gx.data.shape != x_data.shape:  # undo broadcasting: sum expanded axes
                    if tracer is not None:
                        tracer.summed(x, gx.shape, x.shape)
                    gx = sum_to(gx, x_data.shape)
                if gx.data.dtype is not x_data.dtype and gx.data.dtype != x_data.dtype:
                    gx = gx.astype(x_data.dtype)  # a float64 input must not make a
                    # float32 parameter's gradient float64
                creator = x.creator
                if creator is None:  # a leaf
                    keep(x, gx)
                    continue
                entry = waiting.get(creator)
                if entry is None:
                    waiting[creator] = [x, gx]
                    heappush(queue, (-creator.sequence_nr, creator))
                else:  # a value used in several places receives the sum of their gradients
                    entry[1] = entry[1] + gx
            if tracer is not None:
                tracer.node(node, g, fn, input_grads)
            if not retain_graph:
                fn.inputs = None  # free the saved inputs; a second backward then says so
    finally:
        _GradMode.enabled = previous_mode
    if capture is None:
        return None
    return [captured.get(id(t)) for t in capture]


def grad(outputs: Tensor, inputs: Sequence[Tensor] | Tensor, grad_outputs: Any = None,
         retain_graph: bool | None = None, create_graph: bool = False,
         allow_unused: bool = False) -> list[Tensor | None]:
    """Gradients of ``outputs`` with respect to ``inputs``, returned instead of being
    accumulated into ``.grad`` (like ``torch.autograd.grad``).

    With ``create_graph=True`` the returned gradients are themselves differentiable:
    ``g, = grad(f, [x], create_graph=True); g.backward()`` gives the second derivative.
    """
    if isinstance(inputs, Tensor):
        inputs = [inputs]
    results = run_backward(outputs, grad_outputs,
                           retain_graph=create_graph if retain_graph is None else retain_graph,
                           create_graph=create_graph, capture=inputs)
    assert results is not None
    if not allow_unused and any(r is None for r in results):
        missing = [i for i, r in enumerate(results) if r is None]
        raise ValueError(f"inputs {missing} were not used to compute the outputs "
                         "(pass allow_unused=True to get None for them)")
    return results


# The one shape operation the engine itself needs. Imported last: the operations are
# built on the classes above.
from chainrule.ops.reduction import sum_to  # noqa: E402
