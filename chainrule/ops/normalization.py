"""Normalisation layers' operations: batch normalisation and layer normalisation.

Both standardise values with a mean and a variance, x̂ = (x - μ)/√(σ² + ε), and then
scale and shift them, y = γ·x̂ + β. They differ only in *which* axes the statistics are
taken over (batch norm: every axis but the channel axis 1, so each channel is
normalised over the batch; layer norm: the last axes, so each sample is normalised on
its own), and so they share one fused primitive, ``Normalize``, whose backward is
written out instead of being traced through a dozen elementary operations.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.tensor import Function, Tensor, as_tensor, is_grad_enabled

__all__ = ["Normalize", "batch_norm", "layer_norm"]


class Normalize(Function):
    """y = γ·(x - μ)/√(σ² + ε) + β with μ, σ² over ``axes``.

    ``param_shape`` is the shape γ and β are reshaped to so they broadcast against x.
    With ``stats=(mean, inv_std)`` (arrays in the keepdims shape) those fixed values are
    used instead of the input's own statistics (batch norm in evaluation mode); then
    μ and σ do not depend on x and the layer is a plain affine map of x.
    """

    rule = ("x̂ = (x - μ)/σ; dx = (1/N)·γ/σ·(N·dy - Σdy - x̂·Σ(dy·x̂)) "
            "(γ/σ·dy with fixed statistics); dγ = Σ dy·x̂; dβ = Σ dy")
    formula = ("y = γ·(x - μ)/√(σ² + ε) + β, μ and σ² over the normalised axes (batch norm: all "
               "but the channels; layer norm: the last axes)")
    special = "evaluation mode: μ and σ² are fixed running statistics and y is affine in x"

    def __init__(self, axes: tuple[int, ...], param_shape: tuple[int, ...], eps: float,
                 has_weight: bool, has_bias: bool,
                 stats: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.axes, self.param_shape, self.eps = axes, param_shape, eps
        self.has_weight, self.has_bias, self.stats = has_weight, has_bias, stats

    def forward(self, x, *params):
        if self.stats is None:
            mean = x.mean(axis=self.axes, keepdims=True)
            centered = x - mean
            var = (centered * centered).mean(axis=self.axes, keepdims=True)
            inv_std = 1.0 / np.sqrt(var + self.eps)
            self.mean, self.var = mean, var  # read by batch_norm for the running stats
        else:
            mean, inv_std = self.stats
            centered = x - mean
        xhat = centered * inv_std
        self.xhat, self.inv_std = xhat, inv_std
        # γ and β are summed over the axes they are broadcast along
        padded = (1,) * (x.ndim - len(self.param_shape)) + self.param_shape
        self.param_axes = tuple(i for i, n in enumerate(padded) if n == 1)
        y = xhat
        if self.has_weight:
            y = y * params[0].reshape(self.param_shape)
        if self.has_bias:
            y = y + params[-1].reshape(self.param_shape)
        return y

    def backward(self, g):
        x = self.inputs[0]
        needs = self.needs_input_grad
        weight = self.inputs[1] if self.has_weight else None
        if is_grad_enabled():
            # create_graph: rebuild x̂ from x with recorded operations, so that the
            # gradient can be differentiated again
            if self.stats is None:
                centered = x - x.mean(self.axes, keepdims=True)
                var = (centered * centered).mean(self.axes, keepdims=True)
                inv_std = (var + self.eps) ** -0.5
            else:
                centered = x - Tensor._wrap(self.stats[0])
                inv_std = Tensor._wrap(self.stats[1])
            xhat = centered * inv_std
        else:  # plain backward: reuse the forward's arrays
            xhat, inv_std = Tensor._wrap(self.xhat), Tensor._wrap(self.inv_std)
        grads: list[Tensor | None] = []
        if needs[0]:
            g_xhat = g * weight.reshape(self.param_shape) if weight is not None else g
            if self.stats is None:
                # x̂ depends on x also through μ and σ, hence the two correction terms:
                # dx = (1/σ)·(ĝ - mean(ĝ) - x̂·mean(ĝ·x̂)), with ĝ = γ·dy
                gx = inv_std * (g_xhat - g_xhat.mean(self.axes, keepdims=True)
                                - xhat * (g_xhat * xhat).mean(self.axes, keepdims=True))
            else:
                gx = g_xhat * inv_std
            grads.append(gx)
        else:
            grads.append(None)
        if self.has_weight:
            grads.append((g * xhat).sum(self.param_axes).reshape(weight.shape)
                         if needs[1] else None)
        if self.has_bias:
            bias = self.inputs[-1]
            grads.append(g.sum(self.param_axes).reshape(bias.shape) if needs[-1] else None)
        return tuple(grads)


def _array(value: Tensor | np.ndarray) -> np.ndarray:
    return value.data if isinstance(value, Tensor) else value


def _check_param(name: str, value: Any, shape: tuple[int, ...], op: str) -> None:
    if value is not None and tuple(value.shape) != shape:
        raise ValueError(f"{op}: {name} has shape {tuple(value.shape)}, expected {shape}")


def _apply(x: Tensor, weight: Tensor | None, bias: Tensor | None, fn: Normalize) -> Tensor:
    inputs = [x] + [as_tensor(p, like=x) for p in (weight, bias) if p is not None]
    return fn(*inputs)


def batch_norm(x: Any, running_mean: Tensor | np.ndarray | None = None,
               running_var: Tensor | np.ndarray | None = None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalisation over every axis except axis 1 (the features/channels).

    ``x`` has shape (N, C) or (N, C, *spatial); ``weight`` (γ) and ``bias`` (β) have shape
    (C,). In training, each channel is standardised with the batch's mean and (biased)
    variance, and ``running_mean``/``running_var`` (if given) are updated in place:
    running ← (1 - momentum)·running + momentum·batch, using the *unbiased* batch
    variance for ``running_var`` as PyTorch does. Otherwise the running statistics are
    used, and the operation is affine in x.
    """
    x = as_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"batch_norm: input of shape {x.shape} needs a batch axis and a "
                         "channel axis: (N, C) or (N, C, ...)")
    channels = x.shape[1]
    for name, value in (("running_mean", running_mean), ("running_var", running_var),
                        ("weight", weight), ("bias", bias)):
        _check_param(name, value, (channels,), "batch_norm")
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"batch_norm: momentum must be in [0, 1], got {momentum}")
    axes = (0,) + tuple(range(2, x.ndim))
    param_shape = (1, channels) + (1,) * (x.ndim - 2)
    flags = dict(has_weight=weight is not None, has_bias=bias is not None)
    if not training:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: evaluation mode (training=False) needs "
                             "running_mean and running_var")
        mean = _array(running_mean).astype(x.dtype, copy=False).reshape(param_shape)
        var = _array(running_var).astype(x.dtype, copy=False).reshape(param_shape)
        stats = (mean, 1.0 / np.sqrt(var + eps))
        return _apply(x, weight, bias, Normalize(axes, param_shape, eps, stats=stats, **flags))
    count = x.size // channels if channels else 0
    if count < 2:
        raise ValueError(f"batch_norm: training needs more than one value per channel to "
                         f"estimate a variance, got input of shape {x.shape}")
    fn = Normalize(axes, param_shape, eps, **flags)
    y = _apply(x, weight, bias, fn)
    update_running_stats(running_mean, running_var, fn.mean, fn.var, count, momentum)
    return y


def update_running_stats(running_mean: Tensor | np.ndarray | None,
                         running_var: Tensor | np.ndarray | None, mean: np.ndarray,
                         var: np.ndarray, count: int, momentum: float) -> None:
    """running ← (1 - momentum)·running + momentum·batch, in place, for a batch of
    ``count`` values per channel with (biased) ``var``: ``running_var`` takes the
    *unbiased* variance, var·count/(count - 1), as PyTorch does."""
    if running_mean is not None:
        stat = _array(running_mean)
        stat *= 1.0 - momentum
        stat += momentum * mean.reshape(stat.shape)
    if running_var is not None:
        stat = _array(running_var)
        stat *= 1.0 - momentum
        stat += (momentum * count / (count - 1)) * var.reshape(stat.shape)


def layer_norm(x: Any, normalized_shape: int | tuple[int, ...],
               weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Layer normalisation: standardise each sample over its last axes, which must have
    ``normalized_shape``; ``weight`` (γ) and ``bias`` (β) have that shape too."""
    x = as_tensor(x)
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) \
        else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or x.ndim < k or tuple(x.shape[x.ndim - k:]) != shape:
        raise ValueError(f"layer_norm: the last axes of the input (shape {x.shape}) must "
                         f"be normalized_shape={shape}")
    for name, value in (("weight", weight), ("bias", bias)):
        _check_param(name, value, shape, "layer_norm")
    axes = tuple(range(x.ndim - k, x.ndim))
    fn = Normalize(axes, shape, eps, has_weight=weight is not None, has_bias=bias is not None)
    return _apply(x, weight, bias, fn)
