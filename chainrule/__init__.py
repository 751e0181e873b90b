"""chainrule: error backpropagation over a computational graph, from scratch on NumPy.

>>> from chainrule import Tensor
>>> price = Tensor(100.0, requires_grad=True)
>>> total = price * 2.0 * 1.1
>>> total.backward()
>>> round(price.grad.item(), 4)
2.2
"""

from __future__ import annotations

from chainrule import data, datasets, functional, nn, optim
from chainrule import ops as _ops  # attaches operators and methods to Tensor
from chainrule.explain import explain
from chainrule.gradcheck import (
    GradcheckError,
    GradcheckReport,
    ModelGradcheckReport,
    gradcheck,
    gradcheck_model,
    numerical_gradient,
)
from chainrule.serialization import load, save
from chainrule.tensor import (
    Function,
    Tensor,
    as_tensor,
    enable_grad,
    from_numpy,
    grad,
    is_grad_enabled,
    no_grad,
    promote_types,
    result_type,
    set_grad_enabled,
)
from chainrule.threads import get_num_threads, num_threads, set_num_threads

__version__ = "0.1.0"

__all__ = [
    "Function", "GradcheckError", "GradcheckReport", "ModelGradcheckReport", "Tensor",
    "as_tensor", "data", "datasets", "enable_grad", "explain", "from_numpy", "functional",
    "get_num_threads", "grad", "gradcheck", "gradcheck_model", "is_grad_enabled", "load",
    "nn", "no_grad", "num_threads", "numerical_gradient", "optim", "promote_types",
    "result_type", "save",
    "set_grad_enabled", "set_num_threads",
]

del _ops
