"""The optimiser base class: parameter groups, per-parameter state, saving and loading.

An optimiser holds *parameter groups*: dicts with a ``'params'`` list and the
hyper-parameters for those parameters (``'lr'``, ``'momentum'`` ...). ``step()`` walks
every parameter that has a gradient and lets the subclass update its array in place,
using a per-parameter ``state`` dict (momentum buffers, running averages, step counts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from chainrule.tensor import Tensor

__all__ = ["Optimizer", "ParamsT", "apply_weight_decay", "check_hyper"]

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]


def check_hyper(group: dict[str, Any], name: str, low: float = 0.0,
                high: float | None = None) -> None:
    """Check that ``group[name]`` lies in ``[low, high)`` and store it as a Python float.

    Python floats keep float32 arithmetic float32 (a NumPy float64 scalar would upcast).
    """
    value = group[name]
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not (number >= low and (high is None or number < high)):  # `not` also catches NaN
        valid = f"in [{low}, {high})" if high is not None else f">= {low}"
        raise ValueError(f"invalid {name}={value!r}: must be {valid}")
    group[name] = number


def apply_weight_decay(grad: np.ndarray, param: np.ndarray, weight_decay: float) -> np.ndarray:
    """L2 penalty folded into the gradient: g ← g + λ·p.

    Returns a new array (the parameter's ``.grad`` is left untouched), or ``grad`` itself
    when λ = 0.
    """
    if not weight_decay:
        return grad
    decayed = param * weight_decay
    decayed += grad
    return decayed


class Optimizer:
    """Base class: subclasses set ``defaults`` and implement ``_update``.

    ``params`` is an iterable of Tensors (one group) or of dicts (several groups, each
    with a ``'params'`` entry and optional hyper-parameters overriding ``defaults``).
    ``state[p]`` holds the per-parameter state of parameter ``p``.
    """

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.state: dict[Tensor, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise TypeError("params must be an iterable of Tensors or of dicts, "
                            "got a single Tensor; wrap it in a list")
        groups = [params] if isinstance(params, dict) else list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            hypers = ", ".join(f"{k}={v}" for k, v in group.items() if k != "params")
            lines.append(f"  group {i}: {len(group['params'])} params, {hypers}")
        return "\n".join(lines + [")"])

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters; missing hyper-parameters are taken from ``defaults``."""
        if not isinstance(param_group, dict):
            raise TypeError(f"a param group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("a param group needs a 'params' entry")
        group = dict(param_group)
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        where = f"group {len(self.param_groups)}"
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"parameter {i} of {where} is a {type(p).__name__}; "
                                "optimizers take chainrule Tensors")
            if not p.requires_grad:
                raise ValueError(f"parameter {i} of {where} (shape {p.shape}) does not "
                                 "require grad; pass only trainable parameters")
            if id(p) in seen:
                raise ValueError(f"parameter {i} of {where} (shape {p.shape}) appears "
                                 "more than once in the optimizer")
            seen.add(id(p))
        group["params"] = params
        for name, value in self.defaults.items():
            group.setdefault(name, value)
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group: dict[str, Any]) -> None:
        """Validate a group's hyper-parameters (subclasses extend this)."""
        check_hyper(group, "lr")

    # ------------------------------------------------------------------ stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear gradients: drop them (``set_to_none``) or fill them with zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.data.fill(0)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; parameters without one are skipped.

        ``closure`` (optional) re-evaluates the model and returns the loss, which is
        returned.
        """
        loss = closure() if closure is not None else None
        state = self.state
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                param_state = state.get(p)
                if param_state is None:
                    param_state = state[p] = {}
                self._update(p.data, p.grad.data, param_state, group)
                p._bump_version()  # updated in place: a pending backward must not run
        return loss

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any],
                group: dict[str, Any]) -> None:
        """Update ``param`` in place from ``grad``; ``state`` starts as an empty dict."""
        raise NotImplementedError

    # ------------------------------------------------------------------ saving
    def state_dict(self) -> dict[str, Any]:
        """The optimiser's state as plain numbers and NumPy arrays (copies).

        ``{'state': {index: {name: value}}, 'param_groups': [{..., 'params': [index]}]}``,
        where parameters are numbered across groups in order.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            saved = {k: v for k, v in group.items() if k != "params"}
            saved["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(saved)
        state = {
            index[id(p)]: {k: v.copy() if isinstance(v, np.ndarray) else v
                           for k, v in param_state.items()}
            for p, param_state in self.state.items()
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a ``state_dict()`` (also one that went through JSON or ``np.savez``).

        Raises ValueError naming the mismatch if the groups, parameter counts,
        hyper-parameter names or state shapes do not fit this optimiser.
        """
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"state dict has {len(saved_groups)} parameter groups, "
                             f"this optimizer has {len(self.param_groups)}")
        params: list[Tensor] = []
        new_groups = []
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups, strict=True)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"group {i}: state dict has {len(saved['params'])} "
                                 f"parameters, this optimizer has {len(group['params'])}")
            missing = sorted(set(self.defaults) - set(saved))
            if missing:
                raise ValueError(f"group {i}: state dict lacks hyper-parameters {missing}")
            new_group = dict(group)
            for name, value in saved.items():
                if name != "params":  # JSON turns tuples (betas) into lists
                    new_group[name] = tuple(value) if isinstance(group.get(name), tuple) \
                        else value
            self._check_group(new_group)
            new_groups.append(new_group)
            params.extend(group["params"])

        new_state: dict[Tensor, dict[str, Any]] = {}
        for key, saved_state in state_dict["state"].items():
            i = int(key)  # JSON turns int keys into str
            if not 0 <= i < len(params):
                raise ValueError(f"state dict has state for parameter {i}, "
                                 f"this optimizer has {len(params)} parameters")
            p = params[i]
            entry: dict[str, Any] = {}
            for name, value in saved_state.items():
                if name == "step":  # the only scalar entry: a step counter
                    entry[name] = int(np.asarray(value).item())
                    continue
                array = np.array(value, dtype=p.dtype)  # a copy in the parameter's dtype
                if array.shape != p.shape:
                    raise ValueError(f"state '{name}' of parameter {i} has shape "
                                     f"{array.shape}, the parameter has shape {p.shape}")
                entry[name] = array
            new_state[p] = entry
        self.param_groups[:] = new_groups
        self.state = new_state
