"""Normalisation layers: ``BatchNorm1d``, ``BatchNorm2d`` and ``LayerNorm``.

All three are thin modules around the fused primitives ``F.batch_norm`` and
``F.layer_norm`` (``chainrule/ops/normalization.py``), which hold the maths.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import chainrule.functional as F
from chainrule.nn.module import Module, Parameter, as_input
from chainrule.tensor import Tensor

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm"]


class _BatchNorm(Module):
    """Shared by BatchNorm1d/2d: they differ only in the input shapes they accept."""

    _shapes: dict[int, str] = {}
    optional_buffers = ("num_batches_tracked",)  # older state dicts lack it

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, dtype: Any = np.float32) -> None:
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) \
                or num_features < 1:
            raise ValueError(f"num_features must be a positive int, got {num_features!r}")
        self.num_features, self.eps, self.momentum = int(num_features), eps, momentum
        self.affine = affine
        if affine:
            self.weight = Parameter(np.ones(self.num_features, dtype=dtype))  # γ
            self.bias = Parameter(np.zeros(self.num_features, dtype=dtype))  # β
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        # buffers: saved in state_dict, updated during training, used in evaluation
        self.register_buffer("running_mean", np.zeros(self.num_features, dtype=dtype))
        self.register_buffer("running_var", np.ones(self.num_features, dtype=dtype))
        # training batches seen (PyTorch's name and int64 0-d layout, so state dicts
        # load both ways); with momentum=None the running statistics are their plain
        # average over those batches
        self.register_buffer("num_batches_tracked", np.zeros((), dtype=np.int64))

    def forward(self, x: Any) -> Tensor:
        x = as_input(x, self.running_mean)
        if x.ndim not in self._shapes or x.shape[1] != self.num_features:
            expected = " or ".join(self._shapes.values())
            raise ValueError(f"{type(self).__name__}({self.num_features}) expects input of "
                             f"shape {expected} with C={self.num_features}, got {x.shape}")
        momentum = self.count_batch() if self.training else 0.0
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=self.training, eps=self.eps, momentum=momentum)

    def count_batch(self) -> float:
        """Count one training batch in ``num_batches_tracked``; return the momentum its
        statistics enter the running ones with (``1/k`` for the k-th batch when
        ``momentum=None``, a cumulative average)."""
        self.num_batches_tracked.data += 1
        if self.momentum is None:
            return 1.0 / int(self.num_batches_tracked.data)
        return self.momentum

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of features: input (N, C) or (N, C, L), statistics per feature
    over the batch (and L).

    In training mode each feature is standardised with the batch's mean and variance,
    then scaled by γ (``weight``) and shifted by β (``bias``); the running mean and
    variance (buffers, saved in ``state_dict``) follow the batch statistics with
    ``momentum`` (``None``: their plain average over all batches so far), and are used
    instead in evaluation mode (``eval()``). The buffer ``num_batches_tracked`` counts
    the training batches, as PyTorch's does; state dicts without it still load.
    """

    _shapes = {2: "(N, C)", 3: "(N, C, L)"}


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of feature maps: input (N, C, H, W), statistics per channel
    over N, H and W (see ``BatchNorm1d`` for training versus evaluation)."""

    _shapes = {4: "(N, C, H, W)"}


class LayerNorm(Module):
    """Layer normalisation: each sample is standardised over its last axes (which must
    have ``normalized_shape``), then scaled by γ and shifted by β of that shape. It
    uses no batch statistics, so training and evaluation behave the same."""

    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float = 1e-5,
                 elementwise_affine: bool = True, dtype: Any = np.float32) -> None:
        super().__init__()
        self.normalized_shape = (int(normalized_shape),) \
            if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype))
            self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Any) -> Tensor:
        return F.layer_norm(as_input(x, self.weight), self.normalized_shape, self.weight,
                            self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")
