"""Numerical differentiation, and checking backpropagation against it.

Backpropagation gives every gradient in one backward pass; the numerical gradient
needs two evaluations of the function per input element, (f(x+h) - f(x-h)) / 2h, so
it is thousands of times slower, but so simple that it is the reference to check
backpropagation against.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.tensor import Tensor, no_grad


def _scalar(value: Any) -> float:
    data = value.data if isinstance(value, Tensor) else np.asarray(value)
    if data.size != 1:
        raise ValueError(f"the function must return a single value, got shape {data.shape}")
    return float(data.reshape(()))


def numerical_gradient(f: Callable[[Any], Any], x: Tensor | np.ndarray,
                       eps: float = 1e-4) -> np.ndarray:
    """Central-difference gradient of a scalar function at ``x`` (the textbook method).

    ``f`` is called with ``x`` itself after one element of it was nudged in place, and
    must return a single value (a Tensor or a number); so ``x`` can be a parameter the
    function reads from elsewhere: ``numerical_gradient(lambda _: loss(), layer.weight)``.
    ∂f/∂xᵢ ≈ (f(x + h·eᵢ) - f(x - h·eᵢ)) / 2h, with ``x`` restored afterwards.
    """
    array = x.data if isinstance(x, Tensor) else x
    if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
        raise TypeError("numerical_gradient needs a floating-point Tensor or ndarray")
    grad = np.zeros_like(array, dtype=np.float64)
    flat = array.reshape(-1)  # a view: nudging it nudges x
    if not np.shares_memory(flat, array):
        raise ValueError("numerical_gradient needs a contiguous array")
    with no_grad():
        for i in range(flat.size):
            original = flat[i]
            flat[i] = original + eps
            f_plus = _scalar(f(x))
            flat[i] = original - eps
            f_minus = _scalar(f(x))
            flat[i] = original
            grad.reshape(-1)[i] = (f_plus - f_minus) / (2 * eps)
    return grad.astype(array.dtype, copy=False)


@dataclass
class InputCheck:
    """Backprop versus numerical gradient for one input."""

    index: int
    shape: tuple[int, ...]
    dtype: np.dtype
    max_abs_error: float
    max_rel_error: float
    worst_index: tuple[int, ...]
    analytic_at_worst: float
    numerical_at_worst: float
    ok: bool
    analytic: np.ndarray = field(repr=False)
    numerical: np.ndarray = field(repr=False)


@dataclass
class GradcheckReport:
    """The result of ``gradcheck``: one ``InputCheck`` per input that requires grad."""

    inputs: list[InputCheck]
    atol: float
    rtol: float
    eps: float

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.inputs)

    def __bool__(self) -> bool:
        return self.ok

    def explain(self) -> str:
        """A readable account of every input, with hints when something failed."""
        lines = [f"gradcheck (eps={self.eps:g}, atol={self.atol:g}, rtol={self.rtol:g}): "
                 + ("all gradients agree" if self.ok else "MISMATCH")]
        for c in self.inputs:
            lines.append(
                f"  input {c.index} shape {c.shape} {c.dtype}: max |backprop - numerical| = "
                f"{c.max_abs_error:.3g}, max relative = {c.max_rel_error:.3g} "
                f"{'ok' if c.ok else 'FAILED'}")
            if not c.ok:
                lines.append(f"    worst element {c.worst_index}: backprop "
                             f"{c.analytic_at_worst:.10g}, numerical "
                             f"{c.numerical_at_worst:.10g}")
        if not self.ok:
            hints = []
            if any(c.dtype != np.float64 for c in self.inputs):
                hints.append("use float64 inputs: in float32 the finite differences are "
                             "dominated by rounding error")
            hints.append("an input may sit on a kink (relu or abs at 0, max with ties, "
                         "clip at its bounds), where the derivative jumps: move the "
                         "inputs away from it")
            hints.append("otherwise the backward rule of an operation in the function "
                         "is wrong")
            lines.append("  hints: " + "; ".join(hints))
        return "\n".join(lines)

    __str__ = explain


def gradcheck(f: Callable[..., Tensor], inputs: Sequence[Tensor] | Tensor,
              eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_on_failure: bool = False, seed: int = 0) -> GradcheckReport:
    """Compare backpropagation with central differences for every input requiring grad.

    ``f(*inputs)`` may return any shape: a non-scalar output is reduced to
    Σ output·w with fixed random weights w, which checks the same backward rules.
    An element agrees when |backprop - numerical| ≤ atol + rtol·|numerical|.
    """
    if isinstance(inputs, Tensor):
        inputs = [inputs]
    inputs = list(inputs)
    if not any(isinstance(x, Tensor) and x.requires_grad for x in inputs):
        raise ValueError("gradcheck: none of the inputs requires grad; create them with "
                         "requires_grad=True")
    weights: list[np.ndarray] = []

    def scalar_output() -> Tensor:
        out = f(*inputs)
        if not isinstance(out, Tensor):
            raise TypeError(f"gradcheck: the function must return a Tensor, got "
                            f"{type(out).__name__}")
        if out.size == 1:
            return out.sum()
        if not weights:
            rng = np.random.default_rng(seed)
            weights.append(rng.standard_normal(out.shape).astype(out.dtype))
        return (out * Tensor._wrap(weights[0])).sum()

    for x in inputs:
        if isinstance(x, Tensor):
            x.grad = None
    scalar_output().backward()
    checks = []
    for i, x in enumerate(inputs):
        if not (isinstance(x, Tensor) and x.requires_grad):
            continue
        analytic = (np.zeros(x.shape) if x.grad is None else x.grad.data).astype(np.float64)
        numerical = numerical_gradient(lambda _: scalar_output(), x, eps).astype(np.float64)
        error = np.abs(analytic - numerical)
        allowed = atol + rtol * np.abs(numerical)
        rel = error / np.maximum(np.abs(numerical), 1e-12)
        worst = np.unravel_index(int(np.argmax(error - allowed)), x.shape) if x.size else ()
        checks.append(InputCheck(
            index=i, shape=x.shape, dtype=x.dtype,
            max_abs_error=float(error.max(initial=0.0)),
            max_rel_error=float(rel.max(initial=0.0)), worst_index=tuple(map(int, worst)),
            analytic_at_worst=float(analytic[worst]) if x.size else 0.0,
            numerical_at_worst=float(numerical[worst]) if x.size else 0.0,
            ok=bool(np.all(error <= allowed)), analytic=analytic, numerical=numerical))
    report = GradcheckReport(checks, atol=atol, rtol=rtol, eps=eps)
    if raise_on_failure and not report.ok:
        raise GradcheckError(report.explain())
    return report


class GradcheckError(AssertionError):
    """Backpropagation disagreed with numerical differentiation."""
