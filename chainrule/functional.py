"""The functional interface: every operation as a plain function.

``import chainrule.functional as F`` then ``F.relu(x)``, ``F.cross_entropy(logits, t)``.

Every function takes NumPy arrays wherever it takes tensors, as PyTorch's functions
take tensors: ``F.linear(x, W, b)`` with three arrays works. The conversion is made
once, here, for all of them: each NumPy array argument (positional or keyword) is
wrapped in a Tensor that shares its memory (``chainrule.from_numpy``), so an array
updated in place by the operation (``batch_norm``'s running statistics) is the
caller's own. Lists and numbers are converted by the operations themselves.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule import ops as _ops
from chainrule.tensor import Tensor


def _tensor_if_array(value: Any) -> Any:
    return Tensor._wrap(value) if isinstance(value, np.ndarray) else value


def _accepting_arrays(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with its NumPy array arguments wrapped in Tensors sharing their memory."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        # (loops, not any(): this runs for every layer's every operation)
        for value in args:
            if isinstance(value, np.ndarray):
                args = tuple(map(_tensor_if_array, args))
                break
        for value in kwargs.values():
            if isinstance(value, np.ndarray):
                kwargs = {key: _tensor_if_array(v) for key, v in kwargs.items()}
                break
        return fn(*args, **kwargs)

    return call


__all__ = list(_ops.__all__)
globals().update({name: _accepting_arrays(getattr(_ops, name)) for name in __all__})
