"""Stochastic gradient descent, with optional (Nesterov) momentum — PyTorch's rules."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.optim.optimizer import Optimizer, ParamsT, apply_weight_decay, check_hyper

__all__ = ["SGD", "Momentum", "Nesterov"]


class SGD(Optimizer):
    """Gradient descent ``p ← p − lr·g``, optionally with momentum μ.

    With momentum the step follows a velocity ``v ← μ·v + (1 − dampening)·g`` (``v = g``
    on the first step); ``nesterov`` looks ahead: ``p ← p − lr·(g + μ·v)``.
    ``weight_decay`` λ adds the L2 term ``λ·p`` to the gradient.
    """

    def __init__(self, params: ParamsT, lr: float, momentum: float = 0.0,
                 dampening: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                        weight_decay=weight_decay)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        check_hyper(group, "momentum")
        check_hyper(group, "dampening")
        check_hyper(group, "weight_decay")
        if group["nesterov"] and (group["momentum"] == 0 or group["dampening"] != 0):
            raise ValueError(f"nesterov=True needs momentum > 0 and dampening = 0, got "
                             f"momentum={group['momentum']}, dampening={group['dampening']}")

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any],
                group: dict[str, Any]) -> None:
        # g ← g + λ·p
        grad = apply_weight_decay(grad, param, group["weight_decay"])
        momentum = group["momentum"]
        if momentum:
            velocity = state.get("momentum_buffer")
            if velocity is None:
                # v ← g  (first step)
                velocity = state["momentum_buffer"] = np.array(grad, dtype=param.dtype)
            else:
                # v ← μ·v + (1 − dampening)·g
                velocity *= momentum
                velocity += (1.0 - group["dampening"]) * grad
            if group["nesterov"]:
                # d ← g + μ·v
                grad = grad + momentum * velocity
            else:
                # d ← v
                grad = velocity
        # p ← p − lr·d
        param -= group["lr"] * grad


class Momentum(SGD):
    """SGD with (heavy-ball) momentum: ``v ← μ·v + g``, ``p ← p − lr·v``."""

    def __init__(self, params: ParamsT, lr: float = 0.01, momentum: float = 0.9,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr, momentum=momentum, weight_decay=weight_decay)


class Nesterov(SGD):
    """SGD with Nesterov momentum: ``v ← μ·v + g``, ``p ← p − lr·(g + μ·v)``."""

    def __init__(self, params: ParamsT, lr: float = 0.01, momentum: float = 0.9,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr, momentum=momentum, nesterov=True,
                         weight_decay=weight_decay)
