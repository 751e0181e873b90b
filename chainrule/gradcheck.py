"""Numerical differentiation, and checking backpropagation against it.

Backpropagation gives every gradient in one backward pass; the numerical gradient
needs two evaluations of the function per input element, (f(x+h) - f(x-h)) / 2h, so
it is thousands of times slower, but so simple that it is the reference to check
backpropagation against.
"""

from __future__ import annotations

import time
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
    grad = _central_differences(lambda: f(x), array, range(array.size), eps)
    return grad.reshape(array.shape).astype(array.dtype, copy=False)


def _central_differences(f: Callable[[], Any], array: np.ndarray, indices: Any,
                         eps: float, bar: Any = None) -> np.ndarray:
    """(f() at array + h·eᵢ  -  f() at array - h·eᵢ) / 2h for each flat position i in
    ``indices`` (float64), nudging ``array`` in place and restoring it."""
    flat = array.reshape(-1)  # a view: nudging it nudges the array f reads
    if not np.shares_memory(flat, array):
        raise ValueError("numerical differentiation needs a contiguous array")
    indices = list(indices)
    grad = np.empty(len(indices), dtype=np.float64)
    with no_grad():
        for k, i in enumerate(indices):
            original = flat[i]
            flat[i] = original + eps
            f_plus = _scalar(f())
            flat[i] = original - eps
            f_minus = _scalar(f())
            flat[i] = original
            grad[k] = (f_plus - f_minus) / (2 * eps)
            if bar is not None:
                bar.update(1)
    return grad


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


# --------------------------------------------------------------------------- whole models
@dataclass
class ParameterCheck:
    """Backprop versus numerical gradient for one parameter of a model."""

    name: str
    shape: tuple[int, ...]
    size: int
    checked: int  # elements differenced numerically (all of them unless sampled)
    max_abs_diff: float
    max_rel_diff: float
    numerical_seconds: float  # for all ``size`` elements: extrapolated when sampled
    ok: bool

    @property
    def extrapolated(self) -> bool:
        """True when only some elements were timed and the time was scaled up."""
        return self.checked < self.size


@dataclass
class ModelGradcheckReport:
    """The result of ``gradcheck_model``: one ``ParameterCheck`` per parameter, and how
    long backpropagation and numerical differentiation took. ``str(report)`` is a table."""

    model: str
    batch_size: int
    parameters: list[ParameterCheck]
    backprop_seconds: float  # one forward and one backward pass: every gradient at once
    eps: float
    atol: float
    rtol: float
    sample: int | None

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.parameters)

    def __bool__(self) -> bool:
        return self.ok

    @property
    def numerical_seconds(self) -> float:
        """Time to difference every element of every parameter (extrapolated if sampled)."""
        return sum(p.numerical_seconds for p in self.parameters)

    @property
    def extrapolated(self) -> bool:
        return any(p.extrapolated for p in self.parameters)

    @property
    def speedup(self) -> float:
        """How many times faster backpropagation computed all the gradients."""
        return self.numerical_seconds / max(self.backprop_seconds, 1e-12)

    @property
    def max_abs_diff(self) -> float:
        return max((p.max_abs_diff for p in self.parameters), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain Python values (for JSON)."""
        return {
            "model": self.model, "batch_size": self.batch_size, "ok": self.ok,
            "eps": self.eps, "atol": self.atol, "rtol": self.rtol, "sample": self.sample,
            "backprop_seconds": self.backprop_seconds,
            "numerical_seconds": self.numerical_seconds,
            "numerical_extrapolated": self.extrapolated, "speedup": self.speedup,
            "max_abs_diff": self.max_abs_diff,
            "parameters": [{"name": p.name, "shape": list(p.shape), "size": p.size,
                            "checked": p.checked, "max_abs_diff": p.max_abs_diff,
                            "max_rel_diff": p.max_rel_diff,
                            "numerical_seconds": p.numerical_seconds,
                            "numerical_extrapolated": p.extrapolated, "ok": p.ok}
                           for p in self.parameters],
        }

    def table(self) -> str:
        """The per-parameter table with the timings and the verdict."""
        header = ["parameter", "shape", "elements", "max |diff|", "max rel diff",
                  "numerical time", "check"]
        rows = []
        for p in self.parameters:
            checked = f"{p.size:,}" if not p.extrapolated else f"{p.checked:,} of {p.size:,}"
            rows.append([p.name, str(p.shape), checked, f"{p.max_abs_diff:.2e}",
                         f"{p.max_rel_diff:.2e}",
                         _seconds(p.numerical_seconds) + ("*" if p.extrapolated else ""),
                         "ok" if p.ok else "FAILED"])
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        right = {2, 3, 4, 5}  # numbers line up on the right

        def line(cells: list[str]) -> str:
            return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        total = sum(p.size for p in self.parameters)
        checked = sum(p.checked for p in self.parameters)
        star = "*" if self.extrapolated else ""
        lines = [f"gradient check of {self.model} on a batch of {self.batch_size} in float64 "
                 f"(central differences, eps={self.eps:g})", "",
                 line(header), line(["-" * w for w in widths]), *map(line, rows), "",
                 f"backprop:  all {total:,} gradients in {_seconds(self.backprop_seconds)} "
                 "(one forward and one backward pass)",
                 f"numerical: {_seconds(self.numerical_seconds)}{star} "
                 f"(two forward passes per element: {2 * total:,} passes)",
                 f"speed-up:  backprop was {self.speedup:,.0f}{star} times faster"]
        if self.extrapolated:
            lines.append(f"*extrapolated: only {checked:,} of the {total:,} elements "
                         f"(up to {self.sample:,} per parameter) were differenced and "
                         "timed numerically")
        tolerance = f"|diff| <= {self.atol:g} + {self.rtol:g}·|numerical|"
        if self.ok:
            lines.append(f"result:    OK, backprop agrees with numerical differentiation "
                         f"({tolerance})")
        else:
            failed = ", ".join(p.name for p in self.parameters if not p.ok)
            lines.append(f"result:    MISMATCH in {failed} ({tolerance} fails): the "
                         "backward rule of a layer these parameters feed is probably wrong "
                         "(or an input sits on a kink such as ReLU at 0)")
        return "\n".join(lines)

    __str__ = table


def _seconds(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def _float64_array(value: Any) -> Any:
    """Inputs and float targets in float64; integer class labels unchanged."""
    array = value.data if isinstance(value, Tensor) else np.asarray(value)
    return Tensor._wrap(array.astype(np.float64)) if array.dtype.kind == "f" else array


def gradcheck_model(model: Any, loss_fn: Callable[[Tensor, Any], Tensor], x: Any, t: Any,
                    sample: int | None = None, seed: int = 0, eps: float = 1e-6,
                    atol: float = 1e-6, rtol: float = 1e-4,
                    progress: bool | None = None) -> ModelGradcheckReport:
    """Check a whole model's backpropagation against numerical gradients, and time both.

    A float64 copy of ``model`` computes ``loss_fn(model(x), t)``; backprop gives the
    gradient of every parameter in one backward pass, central differences
    (f(w+h) - f(w-h)) / 2h nudge one element at a time. The report lists, per
    parameter, the largest absolute difference, the largest relative difference
    |a - n| / max(|a|, |n|) (over elements whose gradient exceeds ``atol``) and the
    time numerical differentiation took; an element agrees when
    |a - n| <= atol + rtol·|n|.

    ``sample=N`` differences only N randomly chosen elements per parameter (``seed``
    picks them) and extrapolates the numerical time to all elements; the report marks
    such figures. The model is checked in its current mode; Dropout's random masks are
    held fixed by restoring the model's random generators before every evaluation.
    ``model`` itself is left untouched. A progress bar over the differenced elements
    shows on a terminal unless ``progress=False``.
    """
    import copy

    from chainrule._progress import progress_bar

    if sample is not None and (isinstance(sample, bool) or not isinstance(sample, int)
                               or sample < 1):
        raise ValueError(f"sample must be a positive number of elements per parameter or "
                         f"None (all of them), got {sample!r}")
    if not hasattr(model, "named_parameters"):
        raise TypeError(f"gradcheck_model needs an nn.Module, got {type(model).__name__}; "
                        "for a plain function use gradcheck()")
    net = copy.deepcopy(model).double()
    params = [(name, p) for name, p in net.named_parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no parameters that require grad")
    x64, t64 = _float64_array(x), _float64_array(t)
    generators = dict(net.named_generators())
    states = {name: g.bit_generator.state for name, g in generators.items()}

    def loss() -> Tensor:
        for name, g in generators.items():  # the same dropout masks every time
            g.bit_generator.state = states[name]
        out = loss_fn(net(x64), t64)
        if not isinstance(out, Tensor) or out.size != 1:
            raise ValueError("loss_fn must return a single-value Tensor (a loss), got "
                             f"{type(out).__name__} of shape {getattr(out, 'shape', '?')}")
        return out

    # Backprop: best of three runs, so that a one-off hiccup of the machine does not count.
    backprop_seconds = float("inf")
    for _ in range(3):
        net.zero_grad()
        started = time.perf_counter()
        loss().backward()
        backprop_seconds = min(backprop_seconds, time.perf_counter() - started)

    rng = np.random.default_rng(seed)
    checks = []
    chosen = {name: np.arange(p.size) if sample is None or sample >= p.size
              else np.sort(rng.choice(p.size, size=sample, replace=False))
              for name, p in params}
    bar = progress_bar(sum(map(len, chosen.values())), "differencing", "element", progress)
    for name, p in params:
        analytic = np.zeros(p.size) if p.grad is None else p.grad.data.reshape(-1)
        indices = chosen[name]
        bar.set_postfix(parameter=name, refresh=False)
        started = time.perf_counter()
        numerical = _central_differences(loss, p.data, indices, eps, bar)
        seconds = (time.perf_counter() - started) * p.size / max(len(indices), 1)
        a = analytic[indices]
        diff = np.abs(a - numerical)
        scale = np.maximum(np.abs(a), np.abs(numerical))
        relative = np.where(scale > atol, diff / np.maximum(scale, 1e-300), 0.0)
        checks.append(ParameterCheck(
            name=name, shape=tuple(p.shape), size=int(p.size), checked=len(indices),
            max_abs_diff=float(diff.max(initial=0.0)),
            max_rel_diff=float(relative.max(initial=0.0)), numerical_seconds=seconds,
            ok=bool(np.all(diff <= atol + rtol * np.abs(numerical)))))
    bar.close()
    return ModelGradcheckReport(
        model=type(model).__name__, batch_size=int(np.shape(getattr(x64, "data", x64))[0]),
        parameters=checks, backprop_seconds=backprop_seconds, eps=eps, atol=atol,
        rtol=rtol, sample=sample)
