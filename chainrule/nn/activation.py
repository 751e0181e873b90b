"""Activation functions as modules, and the registry that maps their names to them.

Every place that turns a name into a layer (``MLP(activations="relu")``, ...) goes
through ``get_activation``, so the valid names are the same everywhere, and an unknown
name is an error that lists them, never a silent fallback.
"""

from __future__ import annotations

from typing import Any

import chainrule.functional as F
from chainrule.nn.module import Module, as_input
from chainrule.tensor import Tensor

__all__ = ["ReLU", "LeakyReLU", "GELU", "Softplus", "Sigmoid", "Tanh", "Softmax", "Identity",
           "ACTIVATIONS", "get_activation"]


class Identity(Module):
    """y = x (a "linear" activation: the layer before it stays affine)."""

    recommended_init = "xavier"

    def forward(self, x: Any) -> Tensor:
        return as_input(x)


class ReLU(Module):
    """y = max(x, 0)."""

    # ReLU zeroes half its inputs: He initialisation compensates (see nn.init)
    recommended_init = "he"

    def forward(self, x: Any) -> Tensor:
        return F.relu(as_input(x))


class LeakyReLU(Module):
    """y = x for x > 0, negative_slope·x otherwise."""

    recommended_init = "he"

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x: Any) -> Tensor:
        return F.leaky_relu(as_input(x), self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class GELU(Module):
    """y = x·Φ(x), Φ the standard normal distribution function (the Transformer's
    activation); ``approximate='tanh'`` uses ½x(1 + tanh(√(2/π)(x + 0.044715x³))), as
    ``torch.nn.GELU`` does."""

    recommended_init = "he"  # like ReLU, it passes positive inputs and damps negative ones

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' (exact, with erf) or "
                             f"'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Any) -> Tensor:
        return F.gelu(as_input(x), self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softplus(Module):
    """y = ln(1 + e^(βx))/β, and x where βx > threshold (as ``torch.nn.Softplus``)."""

    recommended_init = "he"  # a smooth ReLU

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        F.softplus(0.0, beta, threshold)  # the same checks, made when the layer is built
        self.beta, self.threshold = float(beta), float(threshold)

    def forward(self, x: Any) -> Tensor:
        return F.softplus(as_input(x), self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Sigmoid(Module):
    """y = 1 / (1 + e^(-x))."""

    recommended_init = "xavier"

    def forward(self, x: Any) -> Tensor:
        return F.sigmoid(as_input(x))


class Tanh(Module):
    """y = tanh(x)."""

    recommended_init = "xavier"

    def forward(self, x: Any) -> Tensor:
        return F.tanh(as_input(x))


class Softmax(Module):
    """y = exp(x) / Σ exp(x) along ``axis``. For training, give the logits to
    ``CrossEntropyLoss`` instead (it fuses softmax with the loss, stably)."""

    recommended_init = "xavier"

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, x: Any) -> Tensor:
        return F.softmax(as_input(x), self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


ACTIVATIONS: dict[str, type[Module]] = {
    "relu": ReLU, "leaky_relu": LeakyReLU, "gelu": GELU, "softplus": Softplus,
    "sigmoid": Sigmoid, "tanh": Tanh,
    "linear": Identity, "identity": Identity, "softmax": Softmax,
}


def get_activation(name: str | Module | None, **kwargs: Any) -> Module:
    """A new activation module for ``name`` (case-insensitive; see ``ACTIVATIONS``);
    ``kwargs`` go to its constructor (``negative_slope=0.2``). A Module is returned as
    it is; None means no activation (``Identity``)."""
    if isinstance(name, Module):
        return name
    if name is None:
        return Identity()
    if isinstance(name, str) and name.lower() in ACTIVATIONS:
        return ACTIVATIONS[name.lower()](**kwargs)
    raise ValueError(f"unknown activation {name!r}; valid names: "
                     + ", ".join(ACTIVATIONS))
