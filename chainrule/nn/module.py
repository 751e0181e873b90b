"""``Module`` and ``Parameter``: the building blocks every layer and model is made of.

A ``Parameter`` is a Tensor that a module learns (it requires grad). A ``Module`` is an
object with a ``forward`` method whose parameters, buffers (state that is saved but not
learnt, like BatchNorm's running mean) and submodules register themselves when they
are assigned as attributes::

    class TwoLayer(Module):
        def __init__(self):
            super().__init__()
            self.fc1 = Linear(4, 8)      # a submodule: registered under "fc1"
            self.fc2 = Linear(8, 1)

        def forward(self, x):
            return self.fc2(self.fc1(x).relu())

    net = TwoLayer()
    [name for name, _ in net.named_parameters()]
    # ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']

The registries are what ``parameters()`` hands to an optimiser, what ``state_dict()``
saves and what ``train()``/``eval()`` walk through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from fnmatch import fnmatchcase
from typing import Any, ClassVar, NamedTuple

import numpy as np

from chainrule.tensor import Tensor, as_tensor

__all__ = ["Module", "Parameter", "as_input", "LoadResult"]


# --------------------------------------------------------------------------- Parameter
class Parameter(Tensor):
    """A Tensor that is a learnable parameter of a module: it requires grad.

    ``Parameter(data)`` accepts Python numbers and (nested) lists, which become float32,
    NumPy arrays, which keep a floating dtype (and are shared, not copied, as in
    PyTorch; integer arrays become float32), and Tensors (whose array is shared).
    When a module registers a parameter that has no ``name`` yet, the attribute name is
    used (``weight``); the full dotted name comes from ``Module.named_parameters()``.
    """

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True, name: str | None = None) -> None:
        array = data.data if isinstance(data, Tensor) else data
        if not isinstance(array, np.ndarray):
            array = np.asarray(array, dtype=np.float32)
        elif array.dtype.kind != "f":
            array = array.astype(np.float32)
        self._setup(array, requires_grad, name)  # shared, not copied as Tensor() does

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


def as_input(x: Any, like: Tensor | None = None) -> Tensor:
    """A module's input as a Tensor.

    Tensors pass through unchanged. NumPy arrays, lists and numbers are wrapped; when
    the layer has parameters (``like``), they are converted to the parameters' dtype, so
    a float64 NumPy batch fed to a float32 network computes in float32 instead of
    silently promoting everything to float64. A float *Tensor* of another precision is
    an error, because converting it would hide a mistake (and change its gradient's
    dtype); integer Tensors (pixel values, say) are converted.
    """
    if isinstance(x, Tensor):
        if like is None or x.data.dtype == like.data.dtype:
            return x
        if x.dtype.kind == "f":
            raise TypeError(
                f"input has dtype {x.dtype} but the layer's parameters are {like.dtype}; "
                f"convert the input (x.astype('{like.dtype}')) or the model "
                f"(model.to('{x.dtype}'))")
        return x.astype(like.dtype)
    if like is not None:
        return Tensor._wrap(np.asarray(x, dtype=like.dtype))
    return as_tensor(x)  # (an array is shared, not copied)


class LoadResult(NamedTuple):
    """What ``load_state_dict(strict=False)`` could not match."""

    missing_keys: list[str]
    unexpected_keys: list[str]


# --------------------------------------------------------------------------- Module
_REGISTRIES = ("_parameters", "_buffers", "_modules")


class Module:
    """Base class of layers and models.

    Subclasses call ``super().__init__()`` first, assign their parameters
    (``Parameter``), submodules (``Module``) and buffers (``register_buffer``) as
    attributes, and implement ``forward``. Calling the module runs ``forward``.

    ``training`` (switched by ``train()``/``eval()``) only changes what Dropout and
    BatchNorm do; whether gradients are recorded is decided by ``chainrule.no_grad()``.
    """

    training: bool
    # Names (fnmatch patterns) of this class's own parameters that are stored transposed
    # relative to PyTorch: chainrule multiplies weights from the right, x·W with W of
    # shape (in, out), where PyTorch stores (out, in). Linear declares ("weight",), the
    # recurrent layers their weight_ih/weight_hh; load_torch_state_dict reads it.
    torch_transposed: ClassVar[tuple[str, ...]] = ()
    # Names of this class's own buffers that state dicts saved by older versions lack
    # (BatchNorm's num_batches_tracked): when absent from a state dict they keep their
    # value and are not reported missing, as PyTorch loads its older BatchNorm states.
    optional_buffers: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        # object.__setattr__: our own __setattr__ needs these registries to exist
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------------ running
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            if isinstance(value, (Parameter, Module)):
                raise AttributeError(
                    f"cannot assign {type(value).__name__} {name!r} before "
                    f"Module.__init__() ran: call super().__init__() first in "
                    f"{type(self).__name__}.__init__")
            object.__setattr__(self, name, value)
            return
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, Parameter):
            self._register("_parameters", name, value)
        elif isinstance(value, Module):
            self._register("_modules", name, value)
        elif name in params:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to parameter "
                                f"{name!r}: give an nn.Parameter (or None)")
            self._register("_parameters", name, None)
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to submodule "
                                f"{name!r}: give an nn.Module (or None)")
            self._register("_modules", name, None)
        elif name in buffers:
            self._register("_buffers", name, _buffer_tensor(name, value))
        else:
            object.__setattr__(self, name, value)

    def _register(self, registry: str, name: str, value: Any) -> None:
        """Put ``value`` in one registry (removing ``name`` from the others).

        The value is also stored as a plain instance attribute, so that reading
        ``self.weight`` in ``forward`` is an ordinary, fast attribute lookup; every
        change goes through here (or ``_forget``), which keeps the two in step.
        """
        if registry == "_parameters" and value is not None and value.name is None:
            value.name = name  # graph pictures label parameters (full names: named_parameters)
        self._forget(name)
        self.__dict__[registry][name] = value
        self.__dict__[name] = value

    def __delattr__(self, name: str) -> None:
        if not self._forget(name):
            object.__delattr__(self, name)

    def _forget(self, name: str) -> bool:
        """Remove ``name`` from the registries and the instance dict; True if it was there."""
        found = False
        for registry in _REGISTRIES:
            if name in self.__dict__[registry]:
                del self.__dict__[registry][name]
                found = True
        if name in self.__dict__:
            del self.__dict__[name]
            found = True
        return found

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (or None, a placeholder like a missing bias) as ``name``."""
        _check_name(self, name)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter({name!r}): expected an nn.Parameter or "
                            f"None, got {type(param).__name__}")
        self._register("_parameters", name, param)

    def register_buffer(self, name: str, value: Tensor | np.ndarray | None) -> None:
        """Register state that is saved in ``state_dict`` but not learnt (no gradient),
        e.g. BatchNorm's running mean. Arrays are wrapped in a Tensor, not copied."""
        _check_name(self, name)
        self._register("_buffers", name, _buffer_tensor(name, value))

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` as the submodule ``name`` (for names that are not
        identifiers, such as ``"0"`` in ``Sequential``)."""
        _check_name(self, name)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module({name!r}): expected an nn.Module, got "
                            f"{type(module).__name__}")
        self._register("_modules", name, module)

    # ------------------------------------------------------------------ walking the tree
    def named_modules(self, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        """This module and every module inside it, with dotted names ('' for this one).
        A module reachable along two paths is listed once (unless ``remove_duplicate``
        is False, as ``state_dict`` needs: there a shared layer is saved under both
        names)."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if remove_duplicate and id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{child_name}" if name else child_name, child)
                        for child_name, child in module._modules.items() if child is not None]
            stack.extend(reversed(children))  # reversed: visit in definition order

    def modules(self) -> Iterator[Module]:
        """This module and every module inside it."""
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """The direct submodules with their attribute names."""
        seen: set[int] = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator[Module]:
        """The direct submodules."""
        for _, child in self.named_children():
            yield child

    def _named_members(self, registries: tuple[str, ...], prefix: str = "",
                       recurse: bool = True,
                       dedupe: bool = True) -> Iterator[tuple[str, Tensor]]:
        """The one walk behind parameters, buffers and state_dict: for every module,
        the entries of ``registries`` in order, with dotted names."""
        seen: set[int] = set()
        walk = self.named_modules(prefix, dedupe) if recurse else iter([(prefix, self)])
        for module_name, module in walk:
            for registry in registries:
                for name, value in module.__dict__[registry].items():
                    if value is None or (dedupe and id(value) in seen):
                        continue
                    seen.add(id(value))
                    yield (f"{module_name}.{name}" if module_name else name), value

    def named_parameters(self, prefix: str = "",
                         recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """Every parameter with its dotted name (``layers.0.weight``); a parameter shared
        by two modules is listed once."""
        yield from self._named_members(("_parameters",), prefix, recurse)  # type: ignore[misc]

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every parameter (what an optimiser needs): ``SGD(model.parameters(), lr=0.1)``."""
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "",
                      recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        """Every buffer with its dotted name (``bn.running_mean``)."""
        yield from self._named_members(("_buffers",), prefix, recurse)

    def named_generators(self) -> Iterator[tuple[str, np.random.Generator]]:
        """Every NumPy random generator held by this module or its submodules (Dropout's
        masks), by dotted name: saving and restoring their states makes random layers
        repeatable (exact resume, fixed masks in a gradient check)."""
        for prefix, module in self.named_modules():
            for attr, value in vars(module).items():
                if isinstance(value, np.random.Generator):
                    yield (f"{prefix}.{attr}" if prefix else attr), value

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        """Every buffer."""
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def num_parameters(self, trainable_only: bool = False) -> int:
        """The number of learnable values (elements of all parameters)."""
        return sum(p.size for p in self.parameters()
                   if p.requires_grad or not trainable_only)

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every submodule and then on this module (e.g. to initialise)."""
        for module in reversed(list(self.modules())):
            fn(module)
        return self

    # ------------------------------------------------------------------ modes and grads
    def train(self, mode: bool = True) -> Module:
        """Training mode (the default): Dropout drops, BatchNorm uses batch statistics.
        Returns the module, so ``model.train()`` can be chained."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Evaluation mode: Dropout passes values through, BatchNorm uses its running
        statistics. Gradients are still recorded; use ``chainrule.no_grad()`` for that."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Forget the accumulated gradients of all parameters (``.grad = None``)."""
        # called every training step: a direct recursion, without the name and
        # duplicate bookkeeping of parameters() (zeroing a shared one twice is harmless)
        for param in self._parameters.values():
            if param is not None:
                param.grad = None
        for child in self._modules.values():
            if child is not None:
                child.zero_grad()

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze (True) every parameter."""
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def to(self, dtype: Any) -> Module:
        """Convert every floating-point parameter and buffer to ``dtype`` in place (the
        Parameter objects stay the same, so an optimiser built earlier still holds them).
        ``model.to('float64')`` is how gradchecks run in double precision."""
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise ValueError(f"Module.to() converts to a floating-point dtype "
                             f"(float32 or float64), got {dtype}")
        for _, tensor in self._named_members(("_parameters", "_buffers")):
            if tensor.dtype.kind == "f" and tensor.dtype != dtype:
                tensor.data = tensor.data.astype(dtype)
                if tensor.grad is not None:
                    tensor.grad = Tensor._wrap(tensor.grad.data.astype(dtype))
        return self

    def double(self) -> Module:
        """Convert parameters and buffers to float64 (``to('float64')``)."""
        return self.to(np.float64)

    def float(self) -> Module:
        """Convert parameters and buffers to float32 (``to('float32')``)."""
        return self.to(np.float32)

    # ------------------------------------------------------------------ saving
    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter and buffer as a NumPy array (a copy), by dotted name, in the
        order the modules define them. Save it with ``chainrule.serialization.save``."""
        return {name: tensor.data.copy()
                for name, tensor in self._named_members(("_parameters", "_buffers"),
                                                        dedupe=False)}

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True) -> LoadResult:
        """Copy the arrays of ``state_dict`` into the parameters and buffers (in place,
        keeping each one's dtype).

        Everything is checked before anything is copied: keys of the model that are
        missing from ``state_dict``, keys of ``state_dict`` the model does not have
        (both only when ``strict``) and shape mismatches (always) are all listed in one
        ValueError, and the model is left unchanged. Returns the missing and
        unexpected keys (useful with ``strict=False``).
        """
        return self._load(state_dict, strict, transposed=set(), caller="load_state_dict")

    def load_torch_state_dict(self, state_dict: Mapping[str, Any],
                              strict: bool = True) -> LoadResult:
        """Load a PyTorch state dict (``torch_model.state_dict()``) into this model.

        The values may be torch tensors (on the CPU) or NumPy arrays; the keys are the
        same dotted names as here (``layers.0.weight``, ``lstm.weight_ih_l0``). Where
        chainrule's layout differs from PyTorch's, the value is converted on the way in:
        every layer lists in ``torch_transposed`` the parameters it stores transposed
        (``Linear.weight`` (in, out) here, (out, in) in PyTorch; the recurrent layers'
        ``weight_ih_l{k}`` (D, G·H) and ``weight_hh_l{k}`` (H, G·H), PyTorch's
        (G·H, D) and (G·H, H)), and those are transposed; everything else is copied as
        it is. The checks and the result are those of ``load_state_dict`` (nothing is
        loaded if anything does not fit); this model's dtypes are kept.
        """
        transposed = {
            f"{prefix}.{name}" if prefix else name
            for prefix, module in self.named_modules(remove_duplicate=False)
            for name in module._parameters
            if any(fnmatchcase(name, pattern) for pattern in module.torch_transposed)}
        return self._load(state_dict, strict, transposed, caller="load_torch_state_dict")

    def _load(self, state_dict: Mapping[str, Any], strict: bool, transposed: set[str],
              caller: str) -> LoadResult:
        """The checks and the copying behind both loaders; the values of ``transposed``
        keys are PyTorch's (out, in) matrices and are copied in transposed."""
        own = dict(self._named_members(("_parameters", "_buffers"), dedupe=False))
        optional = {f"{prefix}.{name}" if prefix else name
                    for prefix, module in self.named_modules(remove_duplicate=False)
                    for name in module.optional_buffers if name in module._buffers}
        missing = [key for key in own if key not in state_dict and key not in optional]
        unexpected = [key for key in state_dict if key not in own]
        arrays: dict[str, np.ndarray] = {}
        problems: list[str] = []
        for key, tensor in own.items():
            if key not in state_dict:
                continue
            array = _numpy(state_dict[key])
            expected = tensor.shape[::-1] if key in transposed else tensor.shape
            if array.dtype.kind not in "biuf":
                problems.append(f"{key}: expected a numeric array, got dtype {array.dtype}")
            elif array.shape != expected:
                layout = (f" in PyTorch's (out, in) layout (stored transposed here, "
                          f"{tensor.shape})") if key in transposed else ""
                problems.append(f"shape mismatch for {key}: the state dict has "
                                f"{array.shape}, the model has {expected}{layout}")
            else:
                arrays[key] = array.T if key in transposed else array
        if strict and missing:
            problems.insert(0, "missing keys (in the model, not in the state dict): "
                            + ", ".join(missing))
        if strict and unexpected:
            problems.insert(int(bool(strict and missing)),
                            "unexpected keys (in the state dict, not in the model): "
                            + ", ".join(unexpected))
        if problems:
            raise ValueError(f"{caller} into {type(self).__name__} failed "
                             f"(nothing was loaded):\n  " + "\n  ".join(problems))
        for key, array in arrays.items():
            np.copyto(own[key].data, array, casting="unsafe")
            own[key]._bump_version()  # changed in place: a pending backward must not run
        return LoadResult(missing, unexpected)

    # ------------------------------------------------------------------ display
    def extra_repr(self) -> str:
        """The constructor arguments shown in ``repr`` (override in layers)."""
        return ""

    def __repr__(self) -> str:
        own = [(n, p) for n, p in self._parameters.items() if p is not None]
        buffers = [(n, b) for n, b in self._buffers.items() if b is not None]
        children = list(self._modules.items())
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not children:
            return head + ")" + _shapes_comment(own, buffers)
        lines = [head + _count_comment(self.num_parameters())]
        for name, tensor in own + buffers:
            lines.append(f"  {name}: {tuple(tensor.shape)}")
        for name, child in children:
            text = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {text}")
        lines.append(")")
        return "\n".join(lines)


# --------------------------------------------------------------------------- helpers
def _check_name(module: Module, name: str) -> None:
    if "_parameters" not in module.__dict__:
        raise AttributeError(f"call super().__init__() first in {type(module).__name__}"
                             ".__init__, before registering anything")
    if not isinstance(name, str) or not name or "." in name:
        raise ValueError(f"invalid name {name!r}: a non-empty string without dots "
                         "(dots separate the levels of dotted names)")
    if hasattr(type(module), name):
        raise ValueError(f"{name!r} is already an attribute of {type(module).__name__}; "
                         "choose another name")


def _numpy(value: Any) -> np.ndarray:
    """A Tensor's, torch tensor's or array-like's values as a NumPy array (torch is not
    imported: a torch tensor is recognised by its ``detach`` and ``cpu`` methods)."""
    if isinstance(value, Tensor):
        return value.data
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _buffer_tensor(name: str, value: Any) -> Tensor | None:
    if value is None or isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray):
        return Tensor._wrap(value)
    raise TypeError(f"buffer {name!r} must be a Tensor, a NumPy array or None, "
                    f"got {type(value).__name__}")


def _count_comment(count: int) -> str:
    return f"  # {count:,} parameter{'s' if count != 1 else ''}"


def _shapes_comment(params: list[tuple[str, Tensor]], buffers: list[tuple[str, Tensor]]) -> str:
    """``  # weight (784, 50), bias (50,): 39,250 parameters; buffers running_mean (5,)``"""
    if not params and not buffers:
        return ""
    parts = []
    if params:
        shapes = ", ".join(f"{n} {tuple(p.shape)}" for n, p in params)
        parts.append(shapes + ":" + _count_comment(sum(p.size for _, p in params))[3:])
    if buffers:
        parts.append("buffers " + ", ".join(f"{n} {tuple(b.shape)}" for n, b in buffers))
    return "  # " + "; ".join(parts)
