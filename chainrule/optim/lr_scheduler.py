"""Learning-rate schedules, stepped once per epoch (PyTorch-compatible sequences).

A scheduler remembers each group's starting learning rate (``base_lrs``) and, on every
``step()``, sets ``group['lr']`` to its formula evaluated at the new epoch count.
Usage::

    scheduler = StepLR(optimizer, step_size=10)
    for epoch in range(epochs):
        train_one_epoch()          # calls optimizer.step() per batch
        scheduler.step()
"""

from __future__ import annotations

import math
from typing import Any

from chainrule.optim.optimizer import Optimizer

__all__ = ["LRScheduler", "StepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR",
           "LinearWarmup"]


class LRScheduler:
    """Base class: subclasses give the learning rate at an epoch in ``lr_at``."""

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not a chainrule Optimizer")
        self.optimizer = optimizer
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.last_epoch = -1
        self.step()  # epoch 0: the schedule's starting learning rates

    def lr_at(self, base_lr: float, epoch: int) -> float:
        """The learning rate at ``epoch`` of a group that started at ``base_lr``."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch and set each group's ``lr``."""
        self.last_epoch += 1
        self._last_lr = [self.lr_at(base, self.last_epoch) for base in self.base_lrs]
        for group, lr in zip(self.optimizer.param_groups, self._last_lr, strict=False):
            group["lr"] = lr

    def get_last_lr(self) -> list[float]:
        """The learning rates set by the last ``step()``, one per group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer, as plain numbers and lists."""
        return {k: list(v) if isinstance(v, list) else v
                for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a ``state_dict()``; the optimizer's own state dict restores its ``lr``."""
        self.__dict__.update({k: list(v) if isinstance(v, list) else v
                              for k, v in state_dict.items()})


def _check_positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


class StepLR(LRScheduler):
    """Decay by ``gamma`` every ``step_size`` epochs: lr = base·γ^⌊epoch / step_size⌋."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = _check_positive_int("step_size", step_size)
        self.gamma = float(gamma)
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(LRScheduler):
    """Decay by ``gamma`` every epoch: lr = base·γ^epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float) -> None:
        self.gamma = float(gamma)
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma**epoch


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from base down to ``eta_min`` over ``T_max`` epochs (then back up):
    lr = η_min + (base − η_min)·(1 + cos(π·epoch / T_max)) / 2."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        self.T_max = _check_positive_int("T_max", T_max)
        self.eta_min = float(eta_min)
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        cosine = (1.0 + math.cos(math.pi * epoch / self.T_max)) / 2.0
        return self.eta_min + (base_lr - self.eta_min) * cosine


class LinearLR(LRScheduler):
    """Scale the base rate by a factor going linearly from ``start_factor`` to
    ``end_factor`` over ``total_iters`` epochs, then constant:
    lr = base·(s + (e − s)·min(epoch, T) / T)."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3,
                 end_factor: float = 1.0, total_iters: int = 5) -> None:
        if not 0.0 < start_factor <= 1.0:
            raise ValueError(f"start_factor must be in (0, 1], got {start_factor!r}")
        if not 0.0 <= end_factor <= 1.0:
            raise ValueError(f"end_factor must be in [0, 1], got {end_factor!r}")
        self.start_factor = float(start_factor)
        self.end_factor = float(end_factor)
        self.total_iters = _check_positive_int("total_iters", total_iters)
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        progress = min(epoch, self.total_iters) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * progress)


class LinearWarmup(LinearLR):
    """Warm up linearly from ``start_factor``·base to base over ``warmup_epochs`` epochs."""

    def __init__(self, optimizer: Optimizer, warmup_epochs: int,
                 start_factor: float = 0.1) -> None:
        _check_positive_int("warmup_epochs", warmup_epochs)
        super().__init__(optimizer, start_factor=start_factor, end_factor=1.0,
                         total_iters=warmup_epochs)
