"""Basic layers: the affine layer ``Linear``, ``Flatten`` and the dropout layers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import chainrule.functional as F
from chainrule.nn.init import RngLike, get_initializer, make_rng, zeros_
from chainrule.nn.module import Module, Parameter, as_input
from chainrule.ops.nn import _normalize_padding_idx
from chainrule.tensor import Tensor

__all__ = ["Linear", "Affine", "Embedding", "Flatten", "Dropout", "Dropout2d"]


def _check_positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


class Linear(Module):
    """The affine (fully connected) layer y = x·W + b.

    ``weight`` has shape (in_features, out_features), the textbook's convention, so a
    batch of row vectors is multiplied from the left. PyTorch stores the transpose,
    (out_features, in_features), and computes x·Wᵀ: copy weights between the two with
    ``.T`` (``load_torch_state_dict`` does it for a whole model). The input may have
    any leading shape (..., in_features).

    ``init`` is the name of an initialiser in ``nn.init`` ('xavier', 'he', 'std', ...) or
    a callable ``init(weight, rng=generator)``; the bias starts at zero. ``seed`` (or a
    Generator ``rng``) makes the initial weights reproducible. Backward (``F.linear``):
    dX = dY·Wᵀ, dW = Xᵀ·dY, db = Σ dY over the batch.
    """

    torch_transposed = ("weight",)  # (in, out) here, (out, in) in PyTorch

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 init: str | Callable[..., Any] = "xavier", seed: int | None = None,
                 rng: RngLike = None, dtype: Any = np.float32) -> None:
        super().__init__()
        self.in_features = _check_positive("in_features", in_features)
        self.out_features = _check_positive("out_features", out_features)
        self.weight = Parameter(np.empty((self.in_features, self.out_features), dtype=dtype))
        get_initializer(init)(self.weight, rng=make_rng(rng, seed))
        if bias:
            self.bias = zeros_(Parameter(np.empty(self.out_features, dtype=dtype)))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: Any) -> Tensor:
        return F.linear(as_input(x, self.weight), self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


Affine = Linear  # the textbook's name for the same layer


class Embedding(Module):
    """A lookup table of word vectors: ``Embedding(num_embeddings, embedding_dim)`` maps
    integer ids of any shape (N, T) to vectors (N, T, embedding_dim).

    Picking row k of ``weight`` is the product of a one-hot vector with the table,
    computed without the one-hot vector; the backward adds the gradients of repeated ids
    into their row. Weights start as N(0, 1), as in PyTorch. The row ``padding_idx`` (if
    given) starts at zero and is never updated by gradients.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int,
                 padding_idx: int | None = None, seed: int | None = None,
                 rng: RngLike = None, dtype: Any = np.float32) -> None:
        super().__init__()
        self.num_embeddings = _check_positive("num_embeddings", num_embeddings)
        self.embedding_dim = _check_positive("embedding_dim", embedding_dim)
        self.padding_idx = None if padding_idx is None else \
            _normalize_padding_idx(padding_idx, self.num_embeddings)
        generator = make_rng(rng, seed)
        table = generator.standard_normal((self.num_embeddings, self.embedding_dim))
        if self.padding_idx is not None:
            table[self.padding_idx] = 0.0
        self.weight = Parameter(table.astype(dtype))

    def forward(self, ids: Any) -> Tensor:
        return F.embedding(ids, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        extra = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{extra}"


class Flatten(Module):
    """Flatten axes ``start_dim``..``end_dim`` into one: (N, C, H, W) → (N, C·H·W)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Any) -> Tensor:
        return F.flatten(as_input(x), self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """Inverted dropout: in training, zero each value with probability ``p`` and scale
    the survivors by 1/(1-p), so that evaluation (``eval()``) needs no rescaling and
    passes values through. ``seed`` fixes the sequence of masks."""

    def __init__(self, p: float = 0.5, seed: int | None = None, rng: RngLike = None) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = float(p)
        self.rng = make_rng(rng, seed)

    def forward(self, x: Any) -> Tensor:
        return F.dropout(as_input(x), self.p, self.training, self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Dropout2d(Dropout):
    """Channel dropout for (N, C, H, W) feature maps: zero whole channels (one draw per
    sample and channel) and scale the rest by 1/(1-p). Neighbouring pixels are strongly
    correlated, so dropping single pixels would hardly regularise a convolution."""

    def forward(self, x: Any) -> Tensor:
        x = as_input(x)
        if not self.training or self.p == 0.0:
            return x
        if x.ndim < 2:
            raise ValueError(f"Dropout2d needs input of shape (N, C, ...), got {x.shape}")
        # F.dropout of a ones tensor of shape (N, C, 1, 1) is the same inverted-dropout
        # mask with one value per channel; broadcasting spreads it over H and W
        ones = Tensor._wrap(np.ones(x.shape[:2] + (1,) * (x.ndim - 2), dtype=x.dtype))
        return x * F.dropout(ones, self.p, True, self.rng)
