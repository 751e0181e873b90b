"""Optimisers with per-coordinate step sizes: AdaGrad, RMSprop, Adam, AdamW — PyTorch's rules.

Each keeps running statistics of the gradient in ``state`` and divides the step by the
root of a running sum/average of squared gradients, so that coordinates with large or
noisy gradients take smaller steps. ``buf`` below is one scratch array per update
(shaped and typed like the parameter), reused so that a step allocates as little as
possible.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule.optim.optimizer import Optimizer, ParamsT, apply_weight_decay, check_hyper

__all__ = ["AdaGrad", "Adagrad", "RMSprop", "Adam", "AdamW"]


class AdaGrad(Optimizer):
    """AdaGrad: ``s ← s + g²``, ``p ← p − lr·g / (√s + ε)``."""

    def __init__(self, params: ParamsT, lr: float = 0.01, eps: float = 1e-10,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, dict(lr=lr, eps=eps, weight_decay=weight_decay))

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        check_hyper(group, "eps")
        check_hyper(group, "weight_decay")

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any],
                group: dict[str, Any]) -> None:
        if not state:
            state["sum"] = np.zeros_like(param)
        # g ← g + λ·p
        grad = apply_weight_decay(grad, param, group["weight_decay"])
        # s ← s + g²
        total = state["sum"]
        buf = np.square(grad, out=np.empty_like(param))
        total += buf
        # p ← p − lr·g / (√s + ε)
        np.sqrt(total, out=buf)
        buf += group["eps"]
        np.divide(grad, buf, out=buf)
        buf *= group["lr"]
        param -= buf


Adagrad = AdaGrad


class RMSprop(Optimizer):
    """RMSprop: ``v ← α·v + (1 − α)·g²``, ``p ← p − lr·g / (√v + ε)``.

    With momentum μ the scaled gradient goes through a buffer first:
    ``b ← μ·b + g / (√v + ε)``, ``p ← p − lr·b``.
    """

    def __init__(self, params: ParamsT, lr: float = 0.01, alpha: float = 0.99,
                 eps: float = 1e-8, momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        defaults = dict(lr=lr, alpha=alpha, eps=eps, momentum=momentum,
                        weight_decay=weight_decay)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        for name in ("alpha", "eps", "momentum", "weight_decay"):
            check_hyper(group, name)

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any],
                group: dict[str, Any]) -> None:
        alpha, momentum = group["alpha"], group["momentum"]
        if not state:
            state["square_avg"] = np.zeros_like(param)
        # g ← g + λ·p
        grad = apply_weight_decay(grad, param, group["weight_decay"])
        # v ← α·v + (1 − α)·g²
        square_avg = state["square_avg"]
        buf = np.square(grad, out=np.empty_like(param))
        buf *= 1.0 - alpha
        square_avg *= alpha
        square_avg += buf
        # d ← g / (√v + ε)
        np.sqrt(square_avg, out=buf)
        buf += group["eps"]
        np.divide(grad, buf, out=buf)
        if momentum:
            # b ← μ·b + d;  d ← b
            velocity = state.get("momentum_buffer")
            if velocity is None:
                velocity = state["momentum_buffer"] = np.zeros_like(param)
            velocity *= momentum
            velocity += buf
            np.copyto(buf, velocity)
        # p ← p − lr·d
        buf *= group["lr"]
        param -= buf


class Adam(Optimizer):
    """Adam: running averages of the gradient and its square, corrected for their zero start.

    ``m ← β1·m + (1 − β1)·g``, ``v ← β2·v + (1 − β2)·g²``, and at step t
    ``p ← p − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + ε)``.
    ``amsgrad`` uses the running maximum of ``v`` instead of ``v``. ``weight_decay`` λ adds
    the L2 term ``λ·p`` to the gradient (see ``AdamW`` for the decoupled form).
    """

    decoupled_weight_decay = False

    def __init__(self, params: ParamsT, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        check_hyper(group, "eps")
        check_hyper(group, "weight_decay")
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"invalid betas={betas!r}: must be a pair (beta1, beta2)")
        pair = {"beta1": betas[0], "beta2": betas[1]}
        check_hyper(pair, "beta1", 0.0, 1.0)
        check_hyper(pair, "beta2", 0.0, 1.0)
        group["betas"] = (pair["beta1"], pair["beta2"])

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any],
                group: dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        lr, weight_decay = group["lr"], group["weight_decay"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(param)
            state["exp_avg_sq"] = np.zeros_like(param)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(param)
        state["step"] = t = state["step"] + 1
        if self.decoupled_weight_decay:
            # p ← p·(1 − lr·λ)
            if weight_decay:
                param *= 1.0 - lr * weight_decay
        else:
            # g ← g + λ·p
            grad = apply_weight_decay(grad, param, weight_decay)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        # m ← β1·m + (1 − β1)·g
        buf = np.multiply(grad, 1.0 - beta1, out=np.empty_like(param))
        m *= beta1
        m += buf
        # v ← β2·v + (1 − β2)·g²
        np.square(grad, out=buf)
        buf *= 1.0 - beta2
        v *= beta2
        v += buf
        if group["amsgrad"]:
            # v̂ ← max(v̂, v), used in place of v
            v = np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        # p ← p − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + ε)
        np.sqrt(v, out=buf)
        buf /= math.sqrt(1.0 - beta2**t)
        buf += group["eps"]
        np.divide(m, buf, out=buf)
        buf *= lr / (1.0 - beta1**t)
        param -= buf


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p ← p·(1 − lr·λ)`` before the Adam step,
    instead of adding ``λ·p`` to the gradient."""

    decoupled_weight_decay = True

    def __init__(self, params: ParamsT, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)
