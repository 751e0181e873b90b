"""Loss functions as modules: ``loss = criterion(prediction, target)``.

Targets may be Tensors, NumPy arrays or (nested) lists. Each module is a thin wrapper
around the fused functional form in ``chainrule.functional``, where the maths lives.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import chainrule.functional as F
from chainrule.nn.module import Module, as_input
from chainrule.ops.nn import _check_reduction
from chainrule.tensor import Tensor

__all__ = ["CrossEntropyLoss", "NLLLoss", "MSELoss", "SumSquaredError", "BCELoss",
           "BCEWithLogitsLoss"]


class _Loss(Module):
    """A loss with a ``reduction``: 'mean' (default), 'sum' or 'none' (per element),
    and optional constant weights, kept as buffers (saved in ``state_dict``, as in
    PyTorch; never learnt)."""

    def __init__(self, reduction: str = "mean", **weights: Any) -> None:
        super().__init__()
        _check_reduction(reduction)
        self.reduction = reduction
        for name, value in weights.items():
            if isinstance(value, Tensor) and value.requires_grad:
                raise ValueError(f"{type(self).__name__}: {name} is a constant (it gets no "
                                 f"gradient); pass {name}.detach()")
            self.register_buffer(name, None if value is None else
                                 np.array(value.data if isinstance(value, Tensor) else value))

    def extra_repr(self) -> str:
        text = f"reduction={self.reduction!r}"
        for name, value in self._buffers.items():
            if value is not None:
                text += f", {name} of shape {value.shape}"
        return text


class CrossEntropyLoss(_Loss):
    """Softmax-with-loss: the cross-entropy between softmax(logits) and the target.

    ``logits`` has shape (..., C), classes on the *last* axis (PyTorch puts them on
    axis 1; for (N, C) the two agree). ``target`` holds class indices of shape (...)
    or one-hot / probability rows of shape (..., C): (N, T, V) logits of a language
    model with (N, T) targets, say. Targets equal to ``ignore_index`` (padding) add
    nothing, and the mean is over the others. Fused, so the backward is simply
    (softmax(logits) - t) / N for the mean.
    """

    def __init__(self, reduction: str = "mean", ignore_index: int = -100, weight: Any = None,
                 label_smoothing: float = 0.0) -> None:
        super().__init__(reduction, weight=weight)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing
        # the same checks as the function's, made when the loss is built
        F.cross_entropy(np.zeros((1, 1)), np.zeros(1, dtype=int), reduction, ignore_index,
                        None, label_smoothing)

    def forward(self, logits: Any, target: Any) -> Tensor:
        return F.cross_entropy(as_input(logits), target, self.reduction, self.ignore_index,
                               self.weight, self.label_smoothing)

    def extra_repr(self) -> str:
        extra = "" if self.ignore_index == -100 else f", ignore_index={self.ignore_index}"
        if self.label_smoothing:
            extra += f", label_smoothing={self.label_smoothing}"
        return super().extra_repr() + extra


class NLLLoss(_Loss):
    """The negative log-likelihood -w[t]·x[t] of log-probabilities (a ``LogSoftmax``
    output), classes on the last axis, as ``F.nll_loss``; ``NLLLoss()(log_softmax(x),
    t)`` equals ``CrossEntropyLoss()(x, t)``."""

    def __init__(self, reduction: str = "mean", ignore_index: int = -100,
                 weight: Any = None) -> None:
        super().__init__(reduction, weight=weight)
        self.ignore_index = ignore_index

    def forward(self, log_probabilities: Any, target: Any) -> Tensor:
        return F.nll_loss(as_input(log_probabilities), target, self.reduction,
                          self.ignore_index, self.weight)

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


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities in [0, 1] (a ``Sigmoid`` output) against
    targets in [0, 1], as ``F.binary_cross_entropy`` (logs clamped at -100, as in
    PyTorch); ``weight`` scales each element's loss."""

    def __init__(self, reduction: str = "mean", weight: Any = None) -> None:
        super().__init__(reduction, weight=weight)

    def forward(self, probabilities: Any, target: Any) -> Tensor:
        return F.binary_cross_entropy(as_input(probabilities), target, self.reduction,
                                      self.weight)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of sigmoid(logits) against targets in [0, 1], fused and
    numerically stable (never takes log of 0); the gradient is σ(x) - t. ``weight``
    scales each element's loss and ``pos_weight`` (one per class, last axis) the
    positive term, as in PyTorch."""

    def __init__(self, reduction: str = "mean", weight: Any = None,
                 pos_weight: Any = None) -> None:
        super().__init__(reduction, weight=weight, pos_weight=pos_weight)

    def forward(self, logits: Any, target: Any) -> Tensor:
        return F.binary_cross_entropy_with_logits(as_input(logits), target, self.reduction,
                                                  self.weight, self.pos_weight)
