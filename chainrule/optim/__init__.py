"""Optimisers, learning-rate schedules and gradient clipping.

``get_optimizer('adam', model.parameters(), lr=1e-3)`` builds an optimiser by name.
"""

from __future__ import annotations

from typing import Any

from chainrule.optim import lr_scheduler
from chainrule.optim.adaptive import AdaGrad, Adagrad, Adam, AdamW, RMSprop
from chainrule.optim.clip import clip_grad_norm_, clip_grad_value_
from chainrule.optim.lr_scheduler import (
    CosineAnnealingLR,
    ExponentialLR,
    LinearLR,
    LinearWarmup,
    LRScheduler,
    StepLR,
)
from chainrule.optim.optimizer import Optimizer, ParamsT
from chainrule.optim.sgd import SGD, Momentum, Nesterov

__all__ = [
    "Optimizer", "SGD", "Momentum", "Nesterov", "AdaGrad", "Adagrad", "RMSprop", "Adam",
    "AdamW", "OPTIMIZERS", "get_optimizer", "clip_grad_norm_", "clip_grad_value_",
    "lr_scheduler", "LRScheduler", "StepLR", "ExponentialLR", "CosineAnnealingLR",
    "LinearLR", "LinearWarmup",
]

#: Optimiser classes by lower-case name.
OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": AdaGrad,
    "rmsprop": RMSprop,
    "adam": Adam,
    "adamw": AdamW,
}


def get_optimizer(name: str, params: ParamsT, **kwargs: Any) -> Optimizer:
    """Build the optimiser called ``name`` (case-insensitive), e.g. ``'adam'``."""
    cls = OPTIMIZERS.get(str(name).lower())
    if cls is None:
        raise ValueError(f"unknown optimizer {name!r}; valid names: {', '.join(OPTIMIZERS)}")
    return cls(params, **kwargs)
