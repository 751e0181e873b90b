"""Loss functions as modules: ``loss = criterion(prediction, target)``.

Targets may be Tensors, NumPy arrays or (nested) lists. Each module is a thin wrapper
around the fused functional form in ``chainrule.functional``, where the maths lives.
"""

from __future__ import annotations

from typing import Any

import chainrule.functional as F
from chainrule.nn.module import Module, as_input
from chainrule.ops.nn import _check_reduction
from chainrule.tensor import Tensor

__all__ = ["CrossEntropyLoss", "MSELoss", "SumSquaredError", "BCEWithLogitsLoss"]


class _Loss(Module):
    """A loss with a ``reduction``: 'mean' (default), 'sum' or 'none' (per element)."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        _check_reduction(reduction)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    """Softmax-with-loss: the cross-entropy between softmax(logits) and the target.

    ``logits`` has shape (..., C), classes on the *last* axis (PyTorch puts them on
    axis 1; for (N, C) the two agree). ``target`` holds class indices of shape (...)
    or one-hot / probability rows of shape (..., C): (N, T, V) logits of a language
    model with (N, T) targets, say. Targets equal to ``ignore_index`` (padding) add
    nothing, and the mean is over the others. Fused, so the backward is simply
    (softmax(logits) - t) / N for the mean.
    """

    def __init__(self, reduction: str = "mean", ignore_index: int = -100) -> None:
        super().__init__(reduction)
        self.ignore_index = ignore_index

    def forward(self, logits: Any, target: Any) -> Tensor:
        return F.cross_entropy(as_input(logits), target, self.reduction, self.ignore_index)

    def extra_repr(self) -> str:
        extra = "" if self.ignore_index == -100 else f", ignore_index={self.ignore_index}"
        return super().extra_repr() + extra


class MSELoss(_Loss):
    """Squared error (y - t)², averaged over all elements by default.

    The textbook's sum-of-squares error E = ½·Σ(y - t)² is
    ``0.5 * MSELoss(reduction='sum')(y, t)``, also available as ``SumSquaredError()``.
    """

    def forward(self, prediction: Any, target: Any) -> Tensor:
        return F.mse_loss(as_input(prediction), target, self.reduction)


class SumSquaredError(Module):
    """The textbook's sum-of-squares error E = ½·Σ(y - t)², whose gradient is simply
    y - t. Equal to ``0.5 * MSELoss(reduction='sum')``."""

    def forward(self, prediction: Any, target: Any) -> Tensor:
        return 0.5 * F.mse_loss(as_input(prediction), target, "sum")


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of sigmoid(logits) against targets in [0, 1], fused and
    numerically stable (never takes log of 0); the gradient is σ(x) - t."""

    def forward(self, logits: Any, target: Any) -> Tensor:
        return F.binary_cross_entropy_with_logits(as_input(logits), target, self.reduction)
