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
import operator
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
    "from_numpy",
    "grad",
    "result_type",
    "promote_types",
    "promote",
    "DEFAULT_FLOAT",
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


class _ModeWithoutArguments(set_grad_enabled):
    """A fixed mode that also decorates without parentheses, as in PyTorch:
    ``@no_grad`` is ``@no_grad()``."""

    mode: bool

    def __new__(cls, func: Callable[..., Any] | None = None) -> Any:
        if func is None:
            return super().__new__(cls)
        if not callable(func):
            raise TypeError(f"{cls.__name__} takes no arguments; use it as "
                            f"`with {cls.__name__}():`, `@{cls.__name__}` or "
                            f"`@{cls.__name__}()`, got {func!r}")
        return cls()(func)  # the function, wrapped as @no_grad() would wrap it

    def __init__(self, func: Callable[..., Any] | None = None) -> None:
        super().__init__(self.mode)


class no_grad(_ModeWithoutArguments):
    """Record nothing: ``with chainrule.no_grad(): ...``, or as a decorator, with or
    without parentheses (``@chainrule.no_grad`` and ``@chainrule.no_grad()``)."""

    mode = False


class enable_grad(_ModeWithoutArguments):
    """Record operations again, e.g. inside a ``no_grad`` block (``with``, ``@enable_grad``
    or ``@enable_grad()``)."""

    mode = True


# --------------------------------------------------------------------------- dtypes
_FLOAT_KINDS = "f"
DEFAULT_FLOAT = np.dtype(np.float32)  # PyTorch's default dtype: Python floats, int → float


def _to_array(data: Any, dtype: Any = None, copy: bool = False) -> np.ndarray:
    """Convert user data to an ndarray: Python floats and lists of floats become float32
    (as in PyTorch), Python ints int64, NumPy arrays keep their dtype. An array (or a
    Tensor's array) of the wanted dtype is shared unless ``copy``."""
    if isinstance(data, Tensor):
        data = data._data
    if isinstance(data, np.ndarray):
        if copy:
            return np.array(data, dtype=dtype)
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


# Type promotion, PyTorch's rule (torch.result_type), in one place. Every operand is
# one of three kinds: a tensor with dimensions, a 0-d tensor, or a Python number. A
# dtype has a category: bool < integer < floating. The result takes the dtype of the
# tensors with dimensions, unless a 0-d tensor or a Python number is of a *higher
# category*: then that one decides (only its category counts, not its width, so a
# float64 scalar does not make a float32 tensor float64). A Python float counts as the
# default float32, a Python int as int64, a Python bool as bool; NumPy's scalars
# (np.float64(0.5)) count as Python numbers of their category, as in PyTorch.
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}
# by category: the dtype a number counts as (a Python or NumPy bool, integer, float)
_NUMBER_DTYPES = {0: np.dtype(bool), 1: np.dtype(np.int64), 2: DEFAULT_FLOAT}
_NUMBERS = (float, int)  # (exact types: bool is an int, but a tensor's kind of its own)


def promote_types(a: Any, b: Any) -> np.dtype:
    """The dtype both ``a`` and ``b`` convert to (``torch.promote_types``): the higher
    category wins outright (int64 with float16 is float16, where NumPy says float64);
    within a category, the wider type."""
    return _promote_types(np.dtype(a), np.dtype(b))


def _promote_types(a: np.dtype | None, b: np.dtype | None) -> np.dtype | None:
    """``promote_types`` where None (no operand of that kind) gives the other one."""
    if a is None or b is None:
        return b if a is None else a
    if a == b:
        return a
    category_a, category_b = _CATEGORY.get(a.kind, 3), _CATEGORY.get(b.kind, 3)
    if category_a != category_b:
        return a if category_a > category_b else b
    return np.promote_types(a, b)


def _combine(higher: np.dtype | None, lower: np.dtype | None) -> np.dtype | None:
    """The dtype of a higher-priority group of operands and a lower one (tensors with
    dimensions over 0-d tensors over Python numbers): the lower group matters only
    where its category is higher (PyTorch's combine_categories)."""
    if higher is None or lower is None:
        return lower if higher is None else higher
    if higher.kind == "f":
        return higher
    if higher.kind == "b" or lower.kind == "f":
        return _promote_types(higher, lower)
    return higher


def result_type(*operands: Any, floating: bool = False) -> np.dtype:
    """The dtype of an operation on ``operands`` (tensors, arrays, Python numbers), by
    PyTorch's rule (``torch.result_type``; see the comment above). ``floating=True``
    is for operations whose result is a real number whatever the inputs (exp, sqrt,
    division): an integer or bool result becomes float32, PyTorch's default dtype."""
    dims = zeros = numbers = None
    for value in operands:
        if isinstance(value, Tensor):
            value = value._data
        elif isinstance(value, (bool, int, float, np.generic)):
            # a number: Python's, or a NumPy scalar (np.float64(0.5)), counted as
            # PyTorch counts them, by category only
            kind = value.dtype.kind if isinstance(value, np.generic) else \
                "b" if isinstance(value, bool) else "i" if isinstance(value, int) else "f"
            numbers = _promote_types(numbers, _NUMBER_DTYPES[_CATEGORY.get(kind, 2)])
            continue
        elif not isinstance(value, np.ndarray):
            value = _to_array(value)
        if value.ndim:
            dims = _promote_types(dims, value.dtype)
        else:
            zeros = _promote_types(zeros, value.dtype)
    dtype = _combine(dims, _combine(zeros, numbers))
    if dtype is None:
        raise TypeError("result_type needs at least one operand")
    if floating and dtype.kind != "f":
        return DEFAULT_FLOAT
    return dtype


def _cast(value: Any, dtype: np.dtype) -> Tensor:
    """``value`` as a Tensor of ``dtype``: tensors through the differentiable astype
    (their gradient comes back in their own dtype), anything else as a constant."""
    if isinstance(value, Tensor):
        if value._data.dtype == dtype:
            return value
        from chainrule.ops.arithmetic import astype  # (ops are built on this module)
        return astype(value, dtype)
    return Tensor._wrap(np.asarray(value, dtype=dtype))


def as_floating(x: Any) -> Tensor:
    """``x`` as a floating-point Tensor: ``promote(x, floating=True)[0]``, the input of
    exp, log, sigmoid... (an integer or bool tensor becomes float32, as in PyTorch)."""
    if isinstance(x, Tensor) and x._data.dtype.kind == "f":
        return x
    return promote(x, floating=True)[0]


def promote(*operands: Any, floating: bool = False) -> tuple[Tensor, ...]:
    """The operands as Tensors of their common dtype, ``result_type(*operands,
    floating=floating)``: the one conversion behind every elementwise operation of
    several inputs (``floating=True``, with one operand, behind exp, log, sigmoid...)."""
    # fast paths, for the common cases: the operands already agree, or a float tensor
    # meets a Python number (which never widens it)
    if len(operands) == 2:
        first, second = operands
        if isinstance(first, Tensor):
            dtype = first._data.dtype
            if isinstance(second, Tensor):
                other = second._data.dtype
                if (other is dtype or other == dtype) and (not floating or dtype.kind == "f"):
                    return operands
            elif dtype.kind == "f" and type(second) in _NUMBERS:
                return first, Tensor._wrap(np.array(second, dtype=dtype))
        elif type(first) in _NUMBERS and isinstance(second, Tensor):
            dtype = second._data.dtype
            if dtype.kind == "f":
                return Tensor._wrap(np.array(first, dtype=dtype)), second
    elif len(operands) == 1:
        first = operands[0]
        if isinstance(first, Tensor) and (not floating or first._data.dtype.kind == "f"):
            return operands
    dtype = result_type(*operands, floating=floating)
    return tuple(_cast(value, dtype) for value in operands)


# --------------------------------------------------------------------------- Tensor
# In-place changes are numbered from the same counter as recorded operations
# (``_sequence``, below): a tensor changed in place keeps the number of its last change
# (``Tensor._version``; unset while it never changed), and ``_last_change`` is the
# newest. A change numbered after an operation was changed after that operation saved
# its inputs, so its backward would read values that are no longer the forward's.
# (Recording costs nothing extra: the operation's own number is the time it saved.)
_last_change = -1


class Tensor:
    """An n-dimensional array that remembers how it was computed.

    ``Tensor(data, requires_grad=False, dtype=None, name=None)`` accepts Python
    numbers, (nested) lists, NumPy arrays and Tensors, and always copies them, as
    ``torch.tensor`` does: changing the array afterwards never changes the tensor.
    ``chainrule.from_numpy(array)`` shares the array instead, and
    ``chainrule.as_tensor(data)`` shares when it can (a Tensor, or an array already of
    the wanted dtype). Python floats and lists of floats become float32, Python ints
    int64; NumPy arrays keep their dtype unless ``dtype`` is given. Only floating-point
    tensors can require gradients.

    ``.data`` is the NumPy array itself. Replacing or updating it (``t.data = a``,
    ``t.data -= lr * g``), an optimiser's step and ``load_state_dict`` count as changes
    in place: if the tensor was saved by an operation whose backward still has to run,
    that backward raises instead of computing a wrong gradient. Writes into the array
    itself (``t.data[0] = 1``, ``np.copyto(t.data, a)``, or through another tensor
    sharing the memory, like ``t.detach()``) are invisible to chainrule, as writes
    through ``.data`` are to PyTorch.
    """

    __slots__ = ("_data", "_version", "grad", "requires_grad", "creator", "name",
                 "_retains_grad", "__weakref__")
    # NumPy defers to our reflected operators: ``ndarray * Tensor`` -> ``Tensor.__rmul__``.
    __array_ufunc__ = None

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None,
                 name: str | None = None) -> None:
        self._setup(_to_array(data, dtype, copy=True), requires_grad, name)

    def _setup(self, array: np.ndarray, requires_grad: bool, name: str | None) -> None:
        """Fill in a new tensor around ``array`` (shared by the constructors)."""
        self._data: np.ndarray = array
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
        t._data = array
        t.grad = None
        t.creator = None
        t.name = None
        t._retains_grad = False
        t.requires_grad = requires_grad
        return t

    # ------------------------------------------------------------------ data
    def _set_data(self, array: Any) -> None:
        self._data = array if isinstance(array, np.ndarray) else _to_array(array)
        self._bump_version()

    # a property, so that replacing or updating .data (t.data -= ...) is noticed
    data = property(operator.attrgetter("_data"), _set_data,
                    doc="The NumPy array holding the values (shared, not a copy).")

    def _bump_version(self) -> None:
        """Record that this tensor's values were changed in place (see ``_last_change``)."""
        global _last_change
        _last_change = self._version = next(_sequence)

    # ------------------------------------------------------------------ attributes
    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def size(self) -> int:
        return self._data.size

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

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
        if requires_grad and self._data.dtype.kind not in _FLOAT_KINDS:
            raise TypeError(
                f"only floating-point tensors can require gradients, but this tensor has "
                f"dtype {self._data.dtype}; create it with dtype='float32' or 'float64'"
            )
        if not requires_grad and self.creator is not None:
            raise ValueError("requires_grad can only be switched off on leaf tensors; "
                             "use .detach() to cut a computed tensor from its graph")
        self.requires_grad = bool(requires_grad)
        return self

    def item(self) -> float | int | bool:
        """The single value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, this one has shape "
                             f"{self.shape} ({self.size} elements)")
        return self._data.item()

    def numpy(self) -> np.ndarray:
        """The underlying NumPy array (shared, not copied)."""
        return self._data

    def tolist(self) -> Any:
        return self._data.tolist()

    def detach(self) -> Tensor:
        """A tensor sharing the same data, cut from the graph (requires no grad)."""
        return Tensor._wrap(self._data)

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
        body = np.array2string(self._data, separator=", ", prefix="Tensor(", precision=4)
        extras = []
        if self._data.dtype not in (np.float32, np.int64, np.bool_):
            extras.append(f"dtype={self._data.dtype}")
        if self.creator is not None:
            extras.append(f"grad_fn=<{type(self.creator).__name__}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        if self.name:
            extras.append(f"name={self.name!r}")
        return "Tensor(" + ", ".join([body, *extras]) + ")"

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self._data)

    def __bool__(self) -> bool:
        return bool(self._data)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """``np.asarray(tensor)`` gives the data (NumPy's array protocol)."""
        if copy:
            return np.array(self._data, dtype=dtype)
        return self._data if dtype is None else self._data.astype(dtype, copy=False)

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


def as_tensor(data: Any, dtype: Any = None, like: Tensor | None = None) -> Tensor:
    """``data`` as a Tensor, sharing memory where it can (``torch.as_tensor``): a Tensor
    of the wanted dtype is returned as it is, a NumPy array of the wanted dtype is
    wrapped without a copy; anything else (lists, numbers, other dtypes) is converted.

    ``like`` (for operations): a Python number takes the dtype of ``like``, so that a
    constant never promotes a float32 network to float64.
    """
    if isinstance(data, Tensor):
        return data if dtype is None else _cast(data, np.dtype(dtype))
    if dtype is None and like is not None and isinstance(data, (int, float)) \
            and not isinstance(data, bool):
        kind = like._data.dtype.kind
        if kind == "f" or (kind in "iu" and isinstance(data, int)):
            return Tensor._wrap(np.array(data, dtype=like._data.dtype))
    return Tensor._wrap(_to_array(data, dtype))


def from_numpy(array: np.ndarray) -> Tensor:
    """A Tensor sharing ``array``'s memory and dtype (``torch.from_numpy``): changing
    one changes the other."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a NumPy array, got {type(array).__name__}; "
                        "use chainrule.as_tensor or chainrule.Tensor for other data")
    return Tensor._wrap(array)


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

    The inputs and the output count as saved for the backward pass: if one of them is
    changed in place before the backward reaches this operation, it raises rather than
    compute a wrong gradient. Operations whose backward needs only shapes (addition,
    reshaping, sums) set ``saves_tensors = False``: changing their inputs cannot make
    their gradient wrong, so it is allowed (as in PyTorch).
    """

    inputs: tuple[Tensor, ...] | None
    needs_input_grad: tuple[bool, ...]
    saves_tensors: bool = True

    def __call__(self, *inputs: Tensor) -> Tensor:
        try:
            value = self.forward(*[x._data for x in inputs])
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
        # the backward pass goes newest first; also the time the inputs were saved
        self.sequence_nr = next(_sequence)
        self.inputs = inputs
        self.needs_input_grad = needs
        # A weak reference: the output owns its creator, never the other way round, so
        # the graph has no reference cycles and is freed as soon as it is unused.
        self._output = weakref.ref(out)
        return out

    def check_unchanged(self, output: Tensor) -> None:
        """Raise if an input or the output was changed in place since this operation
        ran (called by the backward pass before ``backward``; see the class notes).

        A tensor counts as changed when it, or a tensor whose memory it views (the
        input of a reshape, a transpose, a slice), was changed after this operation
        ran (a change numbered after ``sequence_nr``).
        """
        for position, tensor in enumerate((*self.inputs, output)):
            changed = _changed_since(tensor, self.sequence_nr)
            if changed is None:
                continue
            which = "its output" if position == len(self.inputs) else f"input {position}"
            view = "" if changed is tensor else \
                f", through the tensor of shape {changed.shape} whose memory it views"
            raise RuntimeError(
                f"one of the tensors needed for gradient computation has been modified "
                f"in place: {which} of {type(self).__name__} (shape {tensor.shape}, "
                f"dtype {tensor.dtype}) was changed after the forward pass used it"
                f"{view} (its .data replaced or updated, an optimiser step, "
                f"load_state_dict), so this backward would compute a wrong gradient. "
                f"Change tensors only after backward(), or run the forward pass again "
                f"after changing them.")

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


def _changed_since(tensor: Tensor, time: int) -> Tensor | None:
    """``tensor``, or the tensor it is a view of (following the graph up through
    reshapes, transposes and slices), if its data was changed in place after ``time``."""
    while True:
        if getattr(tensor, "_version", -1) > time:  # (unset: never changed)
            return tensor
        fn = tensor.creator
        if fn is None or not fn.inputs:
            return None
        parent = fn.inputs[0]
        base = tensor._data.base
        if base is None or (base is not parent._data and base is not parent._data.base):
            return None  # its own memory: changes to the parent do not reach it
        tensor = parent


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
        if root._data.size != 1:
            raise ValueError(
                f"backward() without a gradient needs a single-value output (a loss), but "
                f"this tensor has shape {root.shape}; pass grad= of that shape, or reduce "
                "it first with .sum() or .mean()"
            )
        # d root/d root = 1 (np.array is several times cheaper than np.ones)
        grad_t = Tensor._wrap(np.array(1, dtype=root._data.dtype).reshape(root._data.shape))
    else:
        grad_t = grad if isinstance(grad, Tensor) else Tensor(np.asarray(grad,
                                                                         dtype=root.dtype))
        if grad_t.shape != root.shape:
            raise ValueError(f"backward(grad=...) needs a gradient of the output's shape "
                             f"{root.shape}, got {grad_t.shape}")

    captured: dict[int, Tensor] = {}
    capture_ids = None if capture is None else {id(t) for t in capture}
    # arrays already given to a leaf's .grad in this pass, or owned by the caller (grad=)
    handed_out: set[int] = set() if grad is None else {id(grad_t._data)}

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
        if not create_graph and (g._data.base is not None or id(g._data) in handed_out):
            # never let two .grad share memory (or alias a read-only broadcast view):
            # in-place updates like clipping must stay local
            g = Tensor._wrap(g._data.copy())
        handed_out.add(id(g._data))
        node.grad = g

    fn = root.creator
    last_change = _last_change  # (no tensor is changed in place during the pass)
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
            if last_change > fn.sequence_nr and fn.saves_tensors:
                fn.check_unchanged(node)  # something changed in place since fn ran
            if node._retains_grad or capture_ids is not None:
                keep(node, g)
            input_grads = fn.backward(g)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            for x, gx, need in zip(fn.inputs, input_grads, fn.needs_input_grad):
                if not need or gx is None:
                    continue
                x_data = x._data
                if gx._data.shape != x_data.shape:  # undo broadcasting: sum expanded axes
                    if tracer is not None:
                        tracer.summed(x, gx.shape, x.shape)
                    gx = sum_to(gx, x_data.shape)
                if gx._data.dtype is not x_data.dtype and gx._data.dtype != x_data.dtype:
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
