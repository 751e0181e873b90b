"""Gradient clipping, applied between ``backward()`` and ``optimizer.step()``."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from chainrule.tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(parameters: Tensor | Iterable[Tensor]) -> list[np.ndarray]:
    """The gradient arrays of the parameters that have one."""
    params = [parameters] if isinstance(parameters, Tensor) else parameters
    return [p.grad.data for p in params if p.grad is not None]


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False) -> float:
    """Rescale the gradients in place so that their joint norm is at most ``max_norm``.

    The total norm is the ``norm_type``-norm of all gradients concatenated into one
    vector, ‖g‖ = (Σ|gᵢ|ᵖ)^(1/p) (``inf``: max |gᵢ|). If ‖g‖ > max_norm every gradient is
    multiplied by max_norm / (‖g‖ + 1e-6). Returns the total norm before clipping.
    """
    grads = _grads(parameters)
    if not grads:
        return 0.0
    norm_type = float(norm_type)
    # the norm of the per-tensor norms equals the norm of everything concatenated
    norms = [np.linalg.norm(g.ravel(), ord=norm_type) for g in grads]
    total = float(np.linalg.norm(np.array(norms), ord=norm_type))
    if error_if_nonfinite and not np.isfinite(total):
        raise ValueError(f"the total {norm_type}-norm of the gradients is {total}; "
                         "set error_if_nonfinite=False to clip anyway")
    coef = float(max_norm) / (total + 1e-6)
    if coef < 1.0:
        for g in grads:
            g *= coef
    return total


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient entry into ``[-clip_value, clip_value]`` in place."""
    clip_value = float(clip_value)
    if clip_value < 0:
        raise ValueError(f"clip_value must be >= 0, got {clip_value}")
    for g in _grads(parameters):
        np.clip(g, -clip_value, clip_value, out=g)
