"""chainrule: error backpropagation over a computational graph, from scratch on NumPy.

>>> from chainrule import Tensor
>>> price = Tensor(100.0, requires_grad=True)
>>> total = price * 2.0 * 1.1
>>> total.backward()
>>> round(price.grad.item(), 4)
2.2
"""

from __future__ import annotations

from chainrule import functional
from chainrule import ops as _ops  # attaches operators and methods to Tensor
from chainrule.gradcheck import GradcheckError, GradcheckReport, gradcheck, numerical_gradient
from chainrule.tensor import (
    Function,
    Tensor,
    as_tensor,
    enable_grad,
    grad,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)

__version__ = "0.1.0"

__all__ = [
    "Function",
    "GradcheckError",
    "GradcheckReport",
    "Tensor",
    "as_tensor",
    "enable_grad",
    "functional",
    "grad",
    "gradcheck",
    "is_grad_enabled",
    "no_grad",
    "numerical_gradient",
    "set_grad_enabled",
]

del _ops
