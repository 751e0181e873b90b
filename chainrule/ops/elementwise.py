"""Elementwise functions and comparisons, each with its local derivative.

``g`` is the upstream gradient; ``self.output`` is this operation's result y, reused
where the derivative is cheapest in terms of y (exp, tanh, sigmoid, sqrt).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.ops import _parallel, _special
from chainrule.ops._constants import cached_array
from chainrule.ops._scratch import recycled_like
from chainrule.ops.arithmetic import BinaryElementwise
from chainrule.tensor import Function, Tensor, _GradMode, as_floating, as_tensor, promote


def _constant(array: np.ndarray) -> Tensor:
    """A tensor outside the graph (masks, signs): its derivative is zero."""
    return Tensor._wrap(array)


class Exp(Function):
    rule = "d(eˣ)/dx = eˣ = y"
    formula = "y = eˣ"

    def forward(self, x):
        return np.exp(x)

    def backward(self, g):
        return g * self.output


class Log(Function):
    rule = "d(ln x)/dx = 1/x"
    formula = "y = ln x"
    domain = "x > 0"

    def forward(self, x):
        return np.log(x)

    def backward(self, g):
        return g / self.inputs[0]


class Sqrt(Function):
    rule = "d(√x)/dx = 1/(2√x) = 1/(2y)"
    formula = "y = √x"
    domain = "x ≥ 0 (the gradient is infinite at 0)"

    def forward(self, x):
        return np.sqrt(x)

    def backward(self, g):
        return g / (self.output * 2.0)


class Abs(Function):
    rule = "d|x|/dx = sign(x) (0 at x = 0)"
    formula = "y = |x|"
    special = "x = 0: kink; gradient 0 by convention (sign 0 = 0, as torch)"

    def forward(self, x):
        return np.abs(x)

    def backward(self, g):
        return g * _constant(np.sign(self.inputs[0].data))


class Sin(Function):
    rule = "d(sin x)/dx = cos x"
    formula = "y = sin x"

    def forward(self, x):
        return np.sin(x)

    def backward(self, g):
        return g * cos(self.inputs[0])


class Cos(Function):
    rule = "d(cos x)/dx = -sin x"
    formula = "y = cos x"

    def forward(self, x):
        return np.cos(x)

    def backward(self, g):
        return -g * sin(self.inputs[0])


class Tanh(Function):
    rule = "d(tanh x)/dx = 1 - tanh²x = 1 - y²"
    formula = "y = tanh x"

    def forward(self, x):
        return np.tanh(x)

    def backward(self, g):
        y = self.output
        return g * (1.0 - y * y)


def stable_sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1/(1+e⁻ˣ) without overflow: e^(-|x|) never exceeds 1."""
    e = np.exp(-np.abs(x))
    r = 1.0 / (1.0 + e)
    return np.where(x >= 0, r, e * r).astype(x.dtype, copy=False)


class Sigmoid(Function):
    rule = "dσ(x)/dx = σ(x)(1 - σ(x)) = y(1 - y)"
    formula = "y = σ(x) = 1/(1 + e⁻ˣ), computed without overflow"

    def forward(self, x):
        return stable_sigmoid(x)

    def backward(self, g):
        y = self.output
        return g * y * (1.0 - y)


class ReLU(Function):
    rule = "d relu(x)/dx = 1 if x > 0 else 0"
    formula = "y = max(x, 0)"
    special = "x = 0: kink; gradient 0 by convention (as torch)"

    def forward(self, x):
        # NumPy's maximum with a scalar operand takes a loop about twice as slow as with
        # an array of zeros. Beyond a few hundred kB, reading the zeros costs more than
        # it saves (measured: 3.4 -> 1.9 µs for 100×50; 1.4 -> 2.7 ms for 100×30×24×24)
        # Large outputs reuse the memory of dead arrays (ops/_scratch.py: no page faults).
        if x.size <= 1 << 16:
            self.y = np.maximum(x, cached_array("zeros", x.shape, x.dtype))
        else:  # (in shares of the channels with several threads: ops/_parallel.py)
            y = self.y = recycled_like(x)
            _parallel.over_channels(x.shape, lambda i: np.maximum(x[i], 0, out=y[i]))
        return self.y

    def backward(self, g):
        # g·[y > 0]: NumPy has no one-pass form faster than this compare and multiply
        # (measured on 1.25 M float32: 0.70 ms; np.where 4.8, np.copyto(where=) 6.0,
        # g·sign(y) 0.88, np.heaviside 6.8)
        # (the mask is made here, not in forward: inference never needs it)
        y = self.y
        if not _GradMode.enabled:  # the hot path of training: one multiply on arrays
            if g.data.size <= 1 << 16:
                return Tensor._wrap(np.multiply(g.data, y > 0))
            gd, out = g.data, recycled_like(g.data)
            # (several threads take a share of the channels each: ops/_parallel.py)
            _parallel.over_channels(gd.shape, lambda i: np.multiply(gd[i], y[i] > 0, out=out[i]))
            return Tensor._wrap(out)
        return g * _constant(y > 0)


class LeakyReLU(Function):
    rule = "d leaky_relu(x)/dx = 1 if x > 0 else slope"
    formula = "y = x if x > 0 else slope·x"
    special = "x = 0: kink; gradient slope by convention (as torch)"

    def __init__(self, slope: float) -> None:
        self.slope = slope

    def forward(self, x):
        self.positive = x > 0
        return np.where(self.positive, x, x * self.slope)

    def backward(self, g):
        x = self.inputs[0].data
        return g * _constant(np.where(self.positive, 1.0, self.slope).astype(x.dtype))


class Softplus(Function):
    """ln(1 + e^(βx))/β, and x itself where βx > threshold (PyTorch's rule: there the
    two differ by less than e^(-threshold)/β, and the linear form cannot overflow)."""

    rule = "d softplus/dx = σ(βx), and 1 where βx > threshold (the linear part)"
    formula = "y = ln(1 + e^(βx))/β = (max(βx, 0) + ln(1 + e^(-|βx|)))/β; y = x where βx > " \
              "threshold"
    special = "βx = threshold: the value jumps by < e^(-threshold)/β and the slope from " \
              "σ(threshold) to 1 (as torch); β ≠ 0"

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        self.beta, self.threshold = beta, threshold

    def forward(self, x):
        bx = x * self.beta if self.beta != 1.0 else x
        # ln(1+e^z) = max(z, 0) + ln(1 + e^(-|z|)): no overflow for large |z|
        y = np.maximum(bx, 0) + np.log1p(np.exp(-np.abs(bx)))
        if self.beta != 1.0:
            y /= self.beta
        self.linear = bx > self.threshold
        return np.where(self.linear, x, y).astype(x.dtype, copy=False)

    def backward(self, g):
        (x,) = self.inputs
        return where(self.linear, g, g * sigmoid(x * self.beta))


def softplus(x: Any, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """ln(1 + e^(βx))/β elementwise, computed without overflow; where βx > threshold it
    is x itself (the values differ by < e^(-threshold)/β), as ``torch.nn.functional.softplus``."""
    for name, value in (("beta", beta), ("threshold", threshold)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer,
                                                             np.floating)):
            raise TypeError(f"softplus: {name} must be a number, got {value!r}")
    if beta == 0 or not np.isfinite(beta):
        raise ValueError(f"softplus: beta must be a finite non-zero number (it divides the "
                         f"result), got {beta!r}")
    return Softplus(float(beta), float(threshold))(as_tensor(x))


class Clip(Function):
    rule = "d clip(x, lo, hi)/dx = 1 if lo ≤ x ≤ hi else 0"
    formula = "y = min(max(x, lo), hi)"
    special = "x = lo or x = hi: kinks; gradient 1 there (the bounds are inside, as torch.clamp)"

    def __init__(self, low: float | None, high: float | None) -> None:
        self.low, self.high = low, high

    def forward(self, x):
        self.inside = np.ones(x.shape, dtype=bool)
        if self.low is not None:
            self.inside &= x >= self.low
        if self.high is not None:
            self.inside &= x <= self.high
        return np.clip(x, self.low, self.high)

    def backward(self, g):
        return g * _constant(self.inside)


class Maximum(BinaryElementwise):
    rule = "d max(a,b)/da = 1 where a > b, ½ where a = b, else 0 (and b alike)"
    formula = "y = max(a, b) elementwise (broadcasting)"
    special = "a = b: ties share the gradient, ½ each (as torch)"
    pick, wins = staticmethod(np.maximum), staticmethod(np.greater)  # min: below

    def forward(self, a, b):
        return self.pick(a, b)

    def backward(self, g):
        a, b = self.inputs
        # ties share the gradient equally, as in PyTorch (0.5 * a bool array would be
        # float64: cast the sum, or float32 gradients get promoted)
        share_a = _constant((self.wins(a.data, b.data) + 0.5 * (a.data == b.data))
                            .astype(g.dtype))
        ga = g * share_a if self.needs_input_grad[0] else None
        gb = g * (1.0 - share_a) if self.needs_input_grad[1] else None
        return ga, gb


class Minimum(Maximum):
    rule = "d min(a,b)/da = 1 where a < b, ½ where a = b, else 0 (and b alike)"
    formula = "y = min(a, b) elementwise (broadcasting)"
    special = "a = b: ties share the gradient, ½ each (as torch)"
    pick, wins = staticmethod(np.minimum), staticmethod(np.less)


class Where(BinaryElementwise):
    rule = "d where(c, a, b)/da = c, /db = not c"
    formula = "y = a where the condition c holds, else b"
    special = "the condition is a constant: it gets no gradient"

    def __init__(self, condition: np.ndarray) -> None:
        self.condition = condition

    def forward(self, a, b):
        return np.where(self.condition, a, b)

    def backward(self, g):
        c = self.condition
        ga = g * _constant(c) if self.needs_input_grad[0] else None
        gb = g * _constant(~c) if self.needs_input_grad[1] else None
        return ga, gb


# --------------------------------------------------------------------------- functions
def exp(x: Tensor) -> Tensor:
    """eˣ elementwise."""
    return Exp()(as_floating(x))


def log(x: Tensor) -> Tensor:
    """Natural logarithm elementwise."""
    return Log()(as_floating(x))


def sqrt(x: Tensor) -> Tensor:
    """Square root elementwise."""
    return Sqrt()(as_floating(x))


def abs(x: Tensor) -> Tensor:  # noqa: A001 - the usual name
    """|x| elementwise (gradient 0 at 0)."""
    return Abs()(as_tensor(x))


def sin(x: Tensor) -> Tensor:
    """sin x elementwise."""
    return Sin()(as_floating(x))


def cos(x: Tensor) -> Tensor:
    """cos x elementwise."""
    return Cos()(as_floating(x))


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent elementwise."""
    return Tanh()(as_floating(x))


def sigmoid(x: Tensor) -> Tensor:
    """Logistic sigmoid 1/(1+e⁻ˣ), computed without overflow."""
    return Sigmoid()(as_floating(x))


def relu(x: Tensor) -> Tensor:
    """max(x, 0) elementwise (gradient 0 at 0, as in PyTorch)."""
    return ReLU()(as_tensor(x))


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x for x > 0, ``negative_slope``·x otherwise."""
    return LeakyReLU(float(negative_slope))(as_tensor(x))


def clip(x: Tensor, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
    """Limit values to [min, max]; the gradient passes where lo ≤ x ≤ hi."""
    if min is None and max is None:
        raise ValueError("clip: give min, max or both")
    return Clip(min, max)(as_tensor(x))


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise maximum (ties share the gradient equally)."""
    return Maximum()(*promote(a, b))


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise minimum (ties share the gradient equally)."""
    return Minimum()(*promote(a, b))


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """``a`` where ``condition`` holds, else ``b``; the condition carries no gradient."""
    cond = np.asarray(condition.data if isinstance(condition, Tensor) else condition,
                      dtype=bool)
    return Where(cond)(*promote(a, b))


def _compare(op: Any) -> Any:
    def compare(a: Any, b: Any) -> Tensor:
        try:
            a, b = promote(a, b)  # compared in their common dtype, as in PyTorch
        except TypeError:  # not numbers (t == None): NumPy's answer, all False
            pass
        a_data = a.data if isinstance(a, Tensor) else a
        b_data = b.data if isinstance(b, Tensor) else b
        return Tensor._wrap(np.asarray(op(a_data, b_data)))

    compare.__doc__ = f"Elementwise {op.__name__}; the result carries no gradient."
    return compare


eq = _compare(np.equal)
ne = _compare(np.not_equal)
lt = _compare(np.less)
le = _compare(np.less_equal)
gt = _compare(np.greater)
ge = _compare(np.greater_equal)


# --------------------------------------------------------------------------- erf and GELU
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715  # the tanh approximation's cubic term (Hendrycks & Gimpel)


class Erf(Function):
    rule = "d erf(x)/dx = (2/√π)·e^(-x²)"
    formula = "y = erf(x) = (2/√π)·∫₀ˣ e^(-t²) dt"

    def forward(self, x):
        return _special.erf(x)

    def backward(self, g):
        (x,) = self.inputs
        return g * (exp(-(x * x)) * _TWO_OVER_SQRT_PI)


def erf(x: Any) -> Tensor:
    """The error function erf(x) = (2/√π)·∫₀ˣ e^(-t²) dt elementwise (NumPy has none:
    see ``chainrule.ops._special`` for how it is computed and how accurately)."""
    return Erf()(as_floating(x))


def _normal_cdf(x: Tensor) -> Tensor:
    """Φ(x) = ½(1 + erf(x/√2)), recorded (for a backward that is itself differentiated)."""
    return (erf(x * _SQRT_HALF) + 1.0) * 0.5


class GELU(Function):
    """GELU(x) = x·Φ(x), Φ the standard normal distribution function (Hendrycks & Gimpel,
    2016): a smooth ReLU that weighs its input by how likely a normal variable is below
    it. Φ(x) = ½(1 + erf(x/√2)) is computed exactly (to the dtype's precision)."""

    rule = "d(x·Φ(x))/dx = Φ(x) + x·φ(x), φ(x) = e^(-x²/2)/√(2π) the normal density"
    formula = "y = x·Φ(x), Φ the standard normal distribution function"

    def forward(self, x):
        cdf = _special.erf(x * _SQRT_HALF)
        cdf += 1.0
        cdf *= 0.5
        self.cdf = cdf  # Φ(x), reused by the backward
        return x * cdf

    def backward(self, g):
        (x,) = self.inputs
        if not _GradMode.enabled:
            # the hot path of training: the same formula on arrays, in place (one new
            # array instead of six: 9 → 3 ms for a Transformer's 2048 × 512 hidden layer)
            slope = x.data * x.data
            slope *= -0.5
            np.exp(slope, out=slope)                       # e^(-x²/2)
            slope *= x.data
            slope *= _INV_SQRT_2PI                         # x·φ(x)
            slope += self.cdf
            slope *= g.data
            return Tensor._wrap(slope)
        # create_graph: Φ recorded from x, so that the slope can be differentiated again
        density = exp(x * x * -0.5) * _INV_SQRT_2PI
        return g * (_normal_cdf(x) + x * density)


class GELUTanh(Function):
    """GELU's tanh approximation: ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³) (as in
    BERT and GPT-2, and ``torch.nn.GELU(approximate='tanh')``)."""

    rule = "d/dx = ½(1 + t) + ½x(1 - t²)·√(2/π)(1 + 3·0.044715x²), t = tanh u"
    formula = "y = ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³)"

    def forward(self, x):
        self.t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x * x * x))
        return 0.5 * x * (1.0 + self.t)

    def backward(self, g):
        (x,) = self.inputs
        if _GradMode.enabled:  # create_graph: t recorded from x
            t = tanh((x + x * x * x * _GELU_CUBIC) * _SQRT_2_OVER_PI)
        else:
            t = _constant(self.t)
        du_dx = (x * x * (3.0 * _GELU_CUBIC) + 1.0) * _SQRT_2_OVER_PI
        return g * ((t + 1.0) * 0.5 + x * 0.5 * (1.0 - t * t) * du_dx)


_GELU_FORMS = {"none": GELU, "tanh": GELUTanh}


def gelu(x: Any, approximate: str = "none") -> Tensor:
    """GELU(x) = x·Φ(x) elementwise, Φ the standard normal distribution function;
    ``approximate='tanh'`` uses ½x(1 + tanh(√(2/π)(x + 0.044715x³))) instead, as
    ``torch.nn.functional.gelu`` does."""
    if approximate not in _GELU_FORMS:
        raise ValueError(f"gelu: approximate must be 'none' (exact, with erf) or 'tanh', "
                         f"got {approximate!r}")
    return _GELU_FORMS[approximate]()(as_floating(x))
