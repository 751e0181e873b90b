"""Ready-made models: the multi-layer perceptron ``MLP`` and the textbook's
``TwoLayerNet``. Every model takes ``seed``, so two constructions with the same seed
have identical weights; parameters are float32."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule.nn.activation import ReLU, get_activation
from chainrule.nn.container import Sequential
from chainrule.nn.init import make_rng, normal_
from chainrule.nn.layers import Affine, Dropout, Linear
from chainrule.nn.losses import CrossEntropyLoss
from chainrule.nn.module import Module, as_input
from chainrule.nn.normalization import BatchNorm1d
from chainrule.tensor import Tensor, no_grad

__all__ = ["MLP", "TwoLayerNet"]


class MLP(Module):
    """A multi-layer perceptron: Linear layers of ``sizes``, each followed by its
    activation.

    ``activations`` is either

    * one name per layer (``len(sizes) - 1`` names, the last applied to the output):
      ``MLP([2, 10, 1], activations=["sigmoid", "sigmoid"])``, or
    * one name for every hidden layer, with a linear output (give the logits to a
      loss such as ``CrossEntropyLoss``): ``MLP([784, 100, 10], activations="relu")``.

    Names: relu, leaky_relu, sigmoid, tanh, linear/identity, softmax
    (``nn.get_activation``). Hidden layers optionally get ``batch_norm`` (Linear →
    BatchNorm1d → activation) and ``dropout`` (after the activation).

    ``init`` (a name from ``nn.init`` or a callable) initialises every weight; by
    default each weight gets the initialiser matching the activation that follows it:
    He for the ReLU family, Xavier for sigmoid, tanh, linear and softmax. Parameters are
    named ``layers.0.weight``, ``layers.0.bias``, ...
    """

    def __init__(self, sizes: Sequence[int], activations: str | Sequence[str] = "relu",
                 dropout: float = 0.0, batch_norm: bool = False,
                 init: str | Callable[..., Any] | None = None,
                 seed: int | None = None) -> None:
        super().__init__()
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"MLP needs at least two sizes (inputs and outputs), got {sizes}")
        n_layers = len(sizes) - 1
        if isinstance(activations, str) or activations is None:
            names = [activations] * (n_layers - 1) + ["linear"]
        else:
            names = list(activations)
            if len(names) != n_layers:
                raise ValueError(
                    f"MLP with sizes {sizes} has {n_layers} layers, so activations needs "
                    f"{n_layers} names (one per layer, the last for the output), got "
                    f"{len(names)}: {names}; or give one name for all hidden layers")
        acts = [get_activation(name) for name in names]  # unknown names fail here
        self.sizes, self.activation_names = sizes, names
        rng = make_rng(seed=seed)
        layers = Sequential()
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layer_init = init if init is not None else \
                getattr(acts[i], "recommended_init", "xavier")
            layers.append(Linear(n_in, n_out, init=layer_init, rng=rng))
            hidden = i < n_layers - 1
            if hidden and batch_norm:
                layers.append(BatchNorm1d(n_out))
            layers.append(acts[i])
            if hidden and dropout > 0.0:
                layers.append(Dropout(dropout, rng=rng))
        self.layers = layers

    def forward(self, x: Any) -> Tensor:
        return self.layers(x)


class TwoLayerNet(Module):
    """The textbook's two-layer network: Affine → ReLU → Affine.

    The output is the logits; the loss applies the softmax (``loss`` uses
    ``CrossEntropyLoss``, softmax-with-loss). ``weight_init_std`` draws both weights
    from N(0, std²) as in the textbook (0.01 there); None uses He for ``fc1`` (a ReLU
    follows) and Xavier for ``fc2``. Parameters: ``fc1.weight`` (input, hidden),
    ``fc1.bias``, ``fc2.weight`` (hidden, output), ``fc2.bias``.
    """

    def __init__(self, input_size: int = 784, hidden_size: int = 50, output_size: int = 10,
                 weight_init_std: float | None = None, seed: int | None = None) -> None:
        super().__init__()
        rng = make_rng(seed=seed)
        std_init = None if weight_init_std is None else \
            functools.partial(normal_, std=float(weight_init_std))
        self.fc1 = Affine(input_size, hidden_size, init=std_init or "he", rng=rng)
        self.relu = ReLU()
        self.fc2 = Affine(hidden_size, output_size, init=std_init or "xavier", rng=rng)
        self.criterion = CrossEntropyLoss()

    def forward(self, x: Any) -> Tensor:
        return self.fc2(self.relu(self.fc1(x)))

    def predict(self, x: Any) -> Tensor:
        """The logits (the textbook's name for the forward pass)."""
        return self(x)

    def loss(self, x: Any, t: Any) -> Tensor:
        """Softmax-with-loss of the logits against ``t`` (class indices or one-hot)."""
        return self.criterion(self(x), t)

    def accuracy(self, x: Any, t: Any) -> float:
        """The fraction of samples whose largest logit is the target class."""
        with no_grad():
            predicted = np.argmax(self(x).data, axis=-1)
        t = as_input(t).data
        if t.ndim == predicted.ndim + 1:  # one-hot targets
            t = np.argmax(t, axis=-1)
        return float(np.mean(predicted == t))

