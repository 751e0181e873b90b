"""Containers: ``Sequential`` (modules applied one after another) and ``ModuleList``
(a list whose modules are registered, for models that call them in their own way)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from chainrule.nn.module import Module

__all__ = ["Sequential", "ModuleList"]


class _ModuleSequence(Module):
    """Indexing, length, iteration and ``append`` over the registered submodules,
    named "0", "1", ... (the names that appear in ``layers.0.weight``)."""

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module: Module) -> _ModuleSequence:
        """Add ``module`` at the end; returns the container."""
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__} holds nn.Module objects, got "
                            f"{type(module).__name__}")
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> _ModuleSequence:
        """Add several modules at the end; returns the container."""
        for module in modules:
            self.append(module)
        return self

    def __getitem__(self, index: int | slice) -> Any:
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return type(self)(modules[index])
        try:
            return modules[index]
        except IndexError:
            raise IndexError(f"index {index} is out of range for {type(self).__name__} of "
                             f"length {len(modules)}") from None

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())


class Sequential(_ModuleSequence):
    """Apply layers in order: ``Sequential(Linear(784, 50), ReLU(), Linear(50, 10))``.

    Indexable (``seq[0]``, ``seq[-1]``, ``seq[1:]``), with ``len``, iteration and
    ``append``; its parameters are named ``0.weight``, ``2.bias``, ...
    """

    def __init__(self, *layers: Module) -> None:
        super().__init__(layers)

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return Sequential(*list(self._modules.values())[index])
        return super().__getitem__(index)

    def forward(self, x: Any) -> Any:
        for layer in self._modules.values():
            x = layer(x)
        return x


class ModuleList(_ModuleSequence):
    """A list of modules that registers them (a plain Python list would hide their
    parameters from ``parameters()``). It has no ``forward``: the owner decides how to
    call them."""
