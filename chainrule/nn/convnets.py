"""The textbook's convolutional networks: ``SimpleConvNet`` and ``DeepConvNet``.

Both are a stack of layers applied in the order they are assigned in ``__init__``
(like the textbook's ``OrderedDict`` of layers), and both accept flat input: a batch
of shape (N, C·H·W), such as MNIST's (N, 784) rows, is reshaped to
(N, C, H, W) = (N, *input_dim) first.

Where a ReLU is followed by a max-pool, the pool is applied first: relu(max(x)) =
max(relu(x)) exactly, because ReLU is monotone (it never changes which value of a
window is largest, only clips it at zero), and the gradients are the same too (the
window's first maximum gets g when it is positive, nothing gets anything when it is
not). Pooling first runs the ReLU, forward and backward, on a quarter of the values.
The layers keep the textbook's names (``relu1``, ``pool1``, ...); only their order
in ``named_children()`` shows the swap.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from chainrule.nn.activation import ReLU
from chainrule.nn.conv import Conv2d, MaxPool2d
from chainrule.nn.init import make_rng, normal_
from chainrule.nn.layers import Dropout, Flatten, Linear
from chainrule.nn.module import Module, as_input
from chainrule.ops.conv import Window
from chainrule.tensor import Tensor

__all__ = ["SimpleConvNet", "DeepConvNet"]


def _input_dim(input_dim: Any) -> tuple[int, int, int]:
    dims = tuple(input_dim)
    if len(dims) != 3 or not all(isinstance(n, int) and n >= 1 for n in dims):
        raise ValueError(f"input_dim must be (channels, height, width) of positive ints, "
                         f"got {input_dim!r}")
    return dims  # type: ignore[return-value]


def _output_shape(shape: tuple[int, int, int], kernel: int, stride: int, padding: int,
                  op: str) -> tuple[int, int]:
    """(OH, OW) of a conv or pool layer on (C, H, W) input (ValueError if it does not fit)."""
    return Window.make(kernel, stride, padding, 1, op).output_size((1, *shape), op)


class _LayerStack(Module):
    """Applies its submodules in the order they were assigned, after reshaping flat input
    to images of ``input_dim``."""

    input_dim: tuple[int, int, int]

    def forward(self, x: Any) -> Tensor:
        x = as_input(x, next(self.parameters()))
        size = math.prod(self.input_dim)
        if x.ndim == 2 and x.shape[1] == size:
            x = x.reshape(x.shape[0], *self.input_dim)
        elif x.ndim != 4 or x.shape[1:] != self.input_dim:
            raise ValueError(f"{type(self).__name__} expects images of shape (N, "
                             f"{', '.join(map(str, self.input_dim))}) or flat input (N, "
                             f"{size}), got {x.shape}")
        for layer in self.children():
            x = layer(x)
        return x


class SimpleConvNet(_LayerStack):
    """conv → ReLU → max-pool 2×2 → affine → ReLU → affine (the textbook's ch. 7 net;
    the pool runs before the ReLU, which gives the same result, see the module doc).

    ``conv_params`` may override any of ``filter_num`` (30), ``filter_size`` (5),
    ``pad`` (0) and ``stride`` (1). ``weight_init_std`` draws every weight from
    N(0, std²) as in the textbook (0.01 there); None (the default) uses He
    initialisation, which trains faster under ReLU. ``seed`` makes them reproducible.
    The output is raw scores (logits): train with ``F.cross_entropy``. Parameters:
    ``conv1.weight`` (30, 1, 5, 5), ``fc1.weight`` (4320, 100), ``fc2.weight`` (100, 10)
    and their biases (the textbook's W1..W3, b1..b3).
    """

    def __init__(self, input_dim: tuple[int, int, int] = (1, 28, 28),
                 conv_params: dict[str, int] | None = None, hidden_size: int = 100,
                 output_size: int = 10, seed: int | None = None,
                 weight_init_std: float | None = None) -> None:
        super().__init__()
        self.input_dim = _input_dim(input_dim)
        params = {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}
        unknown = set(conv_params or {}) - set(params)
        if unknown:
            raise ValueError(f"unknown conv_params {sorted(unknown)}; valid keys: "
                             f"{sorted(params)}")
        params.update(conv_params or {})
        filters, size = params["filter_num"], params["filter_size"]
        channels = self.input_dim[0]
        rng = make_rng(seed=seed)
        init = "he" if weight_init_std is None else \
            functools.partial(normal_, std=float(weight_init_std))
        conv_hw = _output_shape(self.input_dim, size, params["stride"], params["pad"],
                                "SimpleConvNet convolution")
        pool_hw = _output_shape((filters, *conv_hw), 2, 2, 0, "SimpleConvNet pooling")
        self.conv1 = Conv2d(channels, filters, size, params["stride"], params["pad"],
                            init=init, rng=rng)
        self.pool1 = MaxPool2d(2, 2)  # before the ReLU: the same result, 4× less ReLU work
        self.relu1 = ReLU()
        self.flatten = Flatten()
        self.fc1 = Linear(filters * math.prod(pool_hw), hidden_size, init=init, rng=rng)
        self.relu2 = ReLU()
        self.fc2 = Linear(hidden_size, output_size, init=init, rng=rng)


class DeepConvNet(_LayerStack):
    """The textbook's deep network (ch. 8), about 99.4 % on MNIST:

    conv-ReLU-conv-ReLU-pool, three times (computed as conv-ReLU-conv-pool-ReLU, the
    same, see the module doc; 3×3 kernels; 16, 16, 32, 32, 64, 64
    channels; padding 1, except 2 on the fourth so that MNIST's 28×28 ends as 4×4),
    then affine 50 → ReLU → dropout 0.5 → affine → dropout 0.5. He initialisation;
    ``seed`` fixes the initial weights and the dropout masks. Outputs logits.
    """

    def __init__(self, input_dim: tuple[int, int, int] = (1, 28, 28),
                 output_size: int = 10, seed: int | None = None) -> None:
        super().__init__()
        self.input_dim = _input_dim(input_dim)
        rng = make_rng(seed=seed)
        shape = self.input_dim
        channels = (16, 16, 32, 32, 64, 64)
        paddings = (1, 1, 1, 2, 1, 1)
        for index, (out_channels, pad) in enumerate(zip(channels, paddings), start=1):
            setattr(self, f"conv{index}", Conv2d(shape[0], out_channels, 3, 1, pad, rng=rng))
            shape = (out_channels, *_output_shape(shape, 3, 1, pad, "DeepConvNet"))
            if index % 2 == 0:  # max-pool before the ReLU: the same (see the module doc)
                setattr(self, f"pool{index // 2}", MaxPool2d(2, 2))
                shape = (out_channels, *_output_shape(shape, 2, 2, 0, "DeepConvNet"))
            setattr(self, f"relu{index}", ReLU())
        self.flatten = Flatten()
        self.fc1 = Linear(math.prod(shape), 50, init="he", rng=rng)
        self.relu7 = ReLU()
        self.dropout1 = Dropout(0.5, rng=rng)
        self.fc2 = Linear(50, output_size, init="he", rng=rng)
        self.dropout2 = Dropout(0.5, rng=rng)
