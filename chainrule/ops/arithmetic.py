"""Arithmetic: + - * / ** @ and dtype casts, each with its local derivative.

In every backward, ``g`` is the upstream gradient (of the final result with respect to
this operation's output). Gradients may keep the broadcast shape of the output; the
engine sums them down to each input's shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.ops._checks import broadcast_error
from chainrule.tensor import Function, Tensor, as_tensor, promote


class BinaryElementwise(Function):
    """Base for elementwise operations of two broadcast inputs: explains shape errors."""

    def explain_error(self, inputs, error):
        a, b = inputs
        if a.shape != b.shape and "broadcast" in str(error):
            return broadcast_error(self.name, a.shape, b.shape)
        return None


class Add(BinaryElementwise):
    saves_tensors = False  # the derivative is a constant
    rule = "d(a+b)/da = 1, d(a+b)/db = 1"
    formula = "y = a + b (broadcasting)"

    def forward(self, a, b):
        return a + b

    def backward(self, g):
        return g, g


class Sub(BinaryElementwise):
    saves_tensors = False  # the derivative is a constant
    rule = "d(a-b)/da = 1, d(a-b)/db = -1"
    formula = "y = a - b (broadcasting)"

    def forward(self, a, b):
        return a - b

    def backward(self, g):
        return g, (-g if self.needs_input_grad[1] else None)


class Mul(BinaryElementwise):
    rule = "d(a*b)/da = b, d(a*b)/db = a"
    formula = "y = a·b (broadcasting)"

    def forward(self, a, b):
        return a * b

    def backward(self, g):
        a, b = self.inputs
        ga = g * b if self.needs_input_grad[0] else None
        gb = g * a if self.needs_input_grad[1] else None
        return ga, gb


class Div(BinaryElementwise):
    rule = "d(a/b)/da = 1/b, d(a/b)/db = -a/b²"
    formula = "y = a / b (broadcasting)"
    domain = "b ≠ 0"

    def forward(self, a, b):
        return a / b

    def backward(self, g):
        a, b = self.inputs
        ga = g / b if self.needs_input_grad[0] else None
        gb = -g * self.output / b if self.needs_input_grad[1] else None  # -a/b² = -y/b
        return ga, gb


class Neg(Function):
    saves_tensors = False  # the derivative is a constant
    rule = "d(-x)/dx = -1"
    formula = "y = -x"

    def forward(self, x):
        return -x

    def backward(self, g):
        return -g


class PowScalar(Function):
    """``x ** c`` for a constant exponent c."""

    rule = "d(x^c)/dx = c·x^(c-1)"
    formula = "y = xᶜ for a constant number c"
    domain = "x > 0 for a fractional c; x ≠ 0 for c < 0"
    special = "c = 0: the gradient is 0 everywhere, also at x = 0 (x⁰ is constant)"

    def __init__(self, exponent: float) -> None:
        self.exponent = exponent

    def forward(self, x):
        return x**self.exponent

    def backward(self, g):
        (x,) = self.inputs
        c = self.exponent
        if c == 0:  # x⁰ = 1 is constant; 0·x⁻¹ would give 0·∞ = nan at x = 0
            return g * 0.0
        return g * (x ** (c - 1) * c)


class Pow(BinaryElementwise):
    """``a ** b`` for two tensors."""

    rule = "d(a^b)/da = b·a^(b-1), d(a^b)/db = a^b·ln a"
    formula = "y = aᵇ (broadcasting)"
    domain = "a > 0 (a = 0 with b ≥ 0 gives a value)"
    special = "a = 0: d/db is 0 (ln 1 used in place of ln 0: aᵇ is flat in b there)"

    def forward(self, a, b):
        return a**b

    def backward(self, g):
        a, b = self.inputs
        ga = g * b * a ** (b - 1) if self.needs_input_grad[0] else None
        gb = None
        if self.needs_input_grad[1]:
            # where a = 0, a^b (b ≥ 0) is flat in b: use ln 1 = 0 there, not 0·ln 0 = nan
            gb = g * self.output * log(where(a.data == 0, 1.0, a))
        return ga, gb


class MatMul(Function):
    """Matrix product with NumPy's rules (1-D operands, batched stacks)."""

    rule = "d(a@b)/da = g @ bᵀ, d(a@b)/db = aᵀ @ g"
    formula = "y = a @ b, NumPy's matmul (1-D operands, broadcast batch axes)"

    def explain_error(self, inputs, error):
        a, b = inputs
        if a.ndim == 0 or b.ndim == 0:
            return ValueError(f"matmul: both operands need at least one dimension, got "
                              f"shapes {a.shape} and {b.shape}; use * for scalars")
        k_a, k_b = a.shape[-1], b.shape[0] if b.ndim == 1 else b.shape[-2]
        if k_a != k_b:
            return ValueError(
                f"matmul: shapes {a.shape} @ {b.shape} do not fit: the last axis of the "
                f"left operand ({k_a}) must equal the "
                f"{'only' if b.ndim == 1 else 'second-to-last'} axis of the right "
                f"operand ({k_b})")
        return ValueError(f"matmul: the batch dimensions of {a.shape} and {b.shape} "
                          "cannot be broadcast together")

    def forward(self, a, b):
        return a @ b

    def backward(self, g):
        a, b = self.inputs
        # 1-D operands act as a row (left) or a column (right): promote, then undo.
        a2 = a.reshape(1, -1) if a.ndim == 1 else a
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b
        # restore the column axis first: for 1-D @ 1-D, g is 0-d and needs both axes
        if b.ndim == 1:
            g = g.unsqueeze(-1)
        if a.ndim == 1:
            g = g.unsqueeze(-2)
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = g @ b2.mT
            if ga.shape != a2.shape:  # sum over broadcast batch dimensions
                ga = sum_to(ga, a2.shape)
            ga = ga.reshape(a.shape)
        if self.needs_input_grad[1]:
            gb = a2.mT @ g
            if gb.shape != b2.shape:
                gb = sum_to(gb, b2.shape)
            gb = gb.reshape(b.shape)
        return ga, gb


class AsType(Function):
    saves_tensors = False
    rule = "the identity, cast back to the input's dtype"
    formula = "y = x converted to another dtype"
    domain = "gradients flow between floating dtypes only"

    def __init__(self, dtype: Any) -> None:
        self.dtype = np.dtype(dtype)

    def forward(self, x):
        self.input_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, g):
        return astype(g, self.input_dtype)


# --------------------------------------------------------------------------- functions
def add(a: Any, b: Any) -> Tensor:
    """a + b (broadcasting)."""
    return Add()(*promote(a, b))


def sub(a: Any, b: Any) -> Tensor:
    """a - b (broadcasting)."""
    return Sub()(*promote(a, b))


def mul(a: Any, b: Any) -> Tensor:
    """a * b elementwise (broadcasting)."""
    return Mul()(*promote(a, b))


def div(a: Any, b: Any) -> Tensor:
    """a / b elementwise (broadcasting); true division, so integers give float32."""
    return Div()(*promote(a, b, floating=True))


def neg(x: Tensor) -> Tensor:
    """-x."""
    return Neg()(as_tensor(x))


def pow(a: Any, b: Any) -> Tensor:  # noqa: A001 - mirrors the operator's name
    """a ** b; a constant Python-number exponent uses the cheaper ``PowScalar``."""
    if isinstance(b, (int, float)) and not isinstance(b, bool) and isinstance(a, Tensor):
        (a, _) = promote(a, b)  # (an integer tensor to a float power is float32)
        return PowScalar(b)(a)
    return Pow()(*promote(a, b))


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product a @ b with NumPy's semantics (2-D, batched and 1-D cases)."""
    return MatMul()(*promote(a, b))


def astype(x: Tensor, dtype: Any) -> Tensor:
    """``x`` converted to ``dtype``; gradients flow back in the input's dtype."""
    if np.dtype(dtype) == x.dtype:
        return x
    return AsType(dtype)(x)


# imported last: these modules use the functions above in their backward rules
from chainrule.ops.elementwise import log, where  # noqa: E402
from chainrule.ops.reduction import sum_to  # noqa: E402
