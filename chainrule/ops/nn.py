"""Operations of neural networks: the affine layer, the softmax family and the losses.

They are fused primitives (one node each, backward written out), because these are
the hot path of training and their fused forms are also the numerically stable ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.ops._checks import normalize_axis, normalize_single_axis
from chainrule.ops._constants import cached_array
from chainrule.ops.elementwise import sigmoid, stable_sigmoid
from chainrule.ops.reduction import sum as _sum
from chainrule.tensor import Function, Tensor, _GradMode, as_tensor

_REDUCTIONS = ("mean", "sum", "none")
_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}  # by item size


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


# --------------------------------------------------------------------------- affine
def _sum_rows(a: np.ndarray) -> np.ndarray:
    """Σ over the rows of a 2-D array, computed as ones·a: BLAS's matrix-vector product
    is about three times faster than ``a.sum(axis=0)`` for a batch of 100."""
    return cached_array("ones", a.shape[0], a.dtype) @ a


class Linear(Function):
    """y = x·W + b for x of shape (..., in), W (in, out), b (out,)."""

    rule = "dx = g·Wᵀ, dW = xᵀ·g, db = Σ_batch g"

    def forward(self, x, weight, bias=None):
        y = x @ weight
        if bias is not None:
            y += bias
        return y

    def explain_error(self, inputs, error):
        x, weight = inputs[0], inputs[1]
        if x.ndim == 0 or weight.ndim != 2 or x.shape[-1] != weight.shape[0]:
            return ValueError(
                f"linear: input of shape {x.shape} does not fit a weight of shape "
                f"{weight.shape}: the input's last axis must have {weight.shape[0]} "
                "features")
        if len(inputs) == 3:
            return ValueError(f"linear: a bias of shape {inputs[2].shape} does not fit "
                              f"outputs of shape {x.shape[:-1] + weight.shape[1:]}")
        return None

    def backward(self, g):
        x, weight = self.inputs[0], self.inputs[1]
        needs = self.needs_input_grad
        recording = _GradMode.enabled  # create_graph: the backward itself is recorded
        if not recording:
            # the hot path of training: the same formulas on the bare arrays, without
            # the bookkeeping of tensor operations (arrays and tensors both have
            # @, .T, .reshape and .sum, so the lines below serve both)
            g, x, weight = g.data, x.data, weight.data
        # fold any leading axes into one batch axis: (..., n) -> (batch, n)
        x2 = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])
        g2 = g if g.ndim == 2 else g.reshape(-1, g.shape[-1])
        # db = Σ_batch g. The usual bias of shape (out,) is summed here (a third cheaper
        # than a trip through sum_to on the hot path); any other shape x·W + b
        # broadcasts, (1, out) say, gets g and the engine's sum_to sums it down
        gb = None
        if len(needs) == 3 and needs[2]:
            if self.inputs[2].data.ndim != 1:
                gb = g
            else:
                gb = g2.sum(axis=0) if recording else _sum_rows(g2)
        grads = (g @ weight.T if needs[0] else None,
                 x2.T @ g2 if needs[1] else None,
                 gb)[:len(needs)]
        if recording:
            return grads
        return tuple([None if a is None else Tensor._wrap(a) for a in grads])


def linear(x: Any, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """The affine map x·W + b (W has shape (in_features, out_features))."""
    x = as_tensor(x, like=weight)  # (a shape mismatch is explained by Linear.explain_error)
    if bias is None:
        return Linear()(x, weight)
    return Linear()(x, weight, bias)


# --------------------------------------------------------------------------- softmax family
def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    """log softmax(x) = x - max - ln Σ exp(x - max): never overflows."""
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


class Softmax(Function):
    rule = "dyᵢ/dxⱼ = yᵢ(δᵢⱼ - yⱼ), so dx = y·(g - Σ g·y)"

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x):
        e = np.exp(x - x.max(axis=self.axis, keepdims=True))
        return e / e.sum(axis=self.axis, keepdims=True)

    def backward(self, g):
        y = self.output
        return y * (g - _sum(g * y, self.axis, keepdims=True))


class LogSoftmax(Function):
    rule = "d log softmax(x)ᵢ/dxⱼ = δᵢⱼ - softmax(x)ⱼ, so dx = g - softmax·Σg"

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x):
        return _log_softmax(x, self.axis)

    def backward(self, g):
        return g - self.output.exp() * _sum(g, self.axis, keepdims=True)


class LogSumExp(Function):
    rule = "d ln Σ exp(x)/dxᵢ = softmax(x)ᵢ"

    def __init__(self, axes: tuple[int, ...] | None, keepdims: bool) -> None:
        self.axes, self.keepdims = axes, keepdims

    def forward(self, x):
        m = x.max(axis=self.axes, keepdims=True)
        m = np.where(np.isfinite(m), m, 0)  # all -inf along an axis: avoid inf - inf
        y = m + np.log(np.exp(x - m).sum(axis=self.axes, keepdims=True))
        return y if self.keepdims else np.squeeze(y, axis=self.axes)

    def backward(self, g):
        (x,) = self.inputs
        y = self.output
        if not self.keepdims:
            kept = tuple(1 if self.axes is None or i in self.axes else n
                         for i, n in enumerate(x.shape))
            g, y = g.reshape(kept), y.reshape(kept)
        return g * (x - y).exp()


def softmax(x: Any, axis: int = -1) -> Tensor:
    """exp(x) / Σ exp(x) along ``axis``, computed without overflow."""
    x = as_tensor(x)
    return Softmax(normalize_single_axis(axis, x.shape, "softmax"))(x)


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    """log(softmax(x)) along ``axis``, computed stably (not as log of softmax)."""
    x = as_tensor(x)
    return LogSoftmax(normalize_single_axis(axis, x.shape, "log_softmax"))(x)


def logsumexp(x: Any, axis: int | tuple[int, ...] | None = None,
              keepdims: bool = False) -> Tensor:
    """ln Σ exp(x) over ``axis``, computed stably."""
    x = as_tensor(x)
    return LogSumExp(normalize_axis(axis, x.shape, "logsumexp"), keepdims)(x)


# --------------------------------------------------------------------------- losses
def _reduce(values: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "none":
        return values
    total = np.add.reduce(values, axis=None)  # (cheaper than ndarray.mean's wrapper)
    if reduction == "mean":
        total = total * (1.0 / max(values.size, 1)) if values.size else total * np.nan
    return np.asarray(total, dtype=values.dtype)


class CrossEntropy(Function):
    """Softmax followed by the negative log-likelihood of the target, fused.

    Logits have the classes on the last axis; the target is either class indices (one
    fewer axis) or a probability / one-hot array of the logits' shape.

    The work is done on the transpose, classes × samples: NumPy reduces along a short
    last axis (10 classes) about three times slower than across rows, and softmax needs
    a maximum and a sum for every sample.
    """

    rule = "d CE/dx = softmax(x) - t (per sample; divided by N for the mean)"

    def __init__(self, target: np.ndarray, reduction: str) -> None:
        self.target, self.reduction = target, reduction

    def forward(self, x):
        if x.ndim == 0:
            raise ValueError("cross_entropy: logits need a class axis, got a scalar")
        classes = x.shape[-1]
        self._check_target(x.shape)
        # every position of the leading axes is a sample: (classes, samples)
        xt = x.reshape(-1, classes).T.copy()
        shifted = xt - np.maximum.reduce(xt, axis=0)  # stable: exp never overflows
        self.exp = np.exp(shifted)
        self.total = np.add.reduce(self.exp, axis=0)  # Σ exp per sample
        t = self.target
        if t.dtype.kind in "iu":  # class indices: -log p[target] = log Σ exp - x[target]
            # the flat positions of (target class, sample) in the classes × samples
            # arrays: one index array is about three times faster than a pair
            samples = xt.shape[1]
            self.picked = (t.reshape(-1).astype(np.intp, copy=False) * samples
                           + cached_array("arange", samples))
            nll = np.log(self.total) - shifted.reshape(-1)[self.picked]
        else:  # probabilities: -Σ t log p
            tt = t.reshape(-1, classes).T
            nll = -np.add.reduce(tt * (shifted - np.log(self.total)), axis=0)
        self.count = nll.size
        return _reduce(nll.reshape(x.shape[:-1]), self.reduction)

    def _check_target(self, shape: tuple[int, ...]) -> None:
        t, classes = self.target, shape[-1]
        if t.dtype.kind in "iu":
            if t.shape != shape[:-1]:
                raise ValueError(
                    f"cross_entropy: class-index target of shape {t.shape} does not fit "
                    f"logits of shape {shape}; expected target shape {shape[:-1]} (or "
                    f"one-hot of shape {shape})")
            # one pass checks both ends: seen as unsigned, a negative class is huge
            if t.size and np.maximum.reduce(t.view(_UNSIGNED[t.itemsize]),
                                            axis=None) >= classes:
                bad = t[(t < 0) | (t >= classes)][0]
                raise ValueError(f"cross_entropy: target class {bad} is out of range for "
                                 f"{classes} classes (valid: 0..{classes - 1})")
        elif t.shape != shape:
            raise ValueError(
                f"cross_entropy: probability/one-hot target of shape {t.shape} must have "
                f"the logits' shape {shape} (or give class indices of shape "
                f"{shape[:-1]})")

    def _scale(self, g):
        """The upstream gradient as a factor per sample (÷N for the mean)."""
        if self.reduction == "mean":
            return g * (1.0 / self.count)
        if self.reduction == "sum" or not isinstance(g, Tensor):  # arrays come flat
            return g
        return g.unsqueeze(-1)

    def backward(self, g):
        (x,) = self.inputs
        t = self.target
        if not _GradMode.enabled:
            # the hot path of training, on arrays: (softmax(x) - onehot(t)) · scale, with
            # the scale folded into the division by Σ exp
            scale = self._scale(g.data if g.data.ndim == 0 else g.data.reshape(-1))
            grad = self.exp * (scale / self.total)
            if t.dtype.kind in "iu":
                grad.reshape(-1)[self.picked] -= scale
            else:
                tt = t.reshape(-1, x.shape[-1]).T
                grad *= np.add.reduce(tt, axis=0)
                grad -= tt * scale
            return Tensor._wrap(grad.T.reshape(x.shape))  # back to samples × classes
        # create_graph: the same formula with the softmax recorded, so that it can be
        # differentiated again: d(-Σ t log softmax(x))/dx = softmax(x)·Σt - t
        if t.dtype.kind in "iu":
            soft = np.zeros(x.shape, dtype=x.dtype)
            np.put_along_axis(soft, t[..., None], 1.0, axis=-1)
            mass = 1.0
        else:
            soft, mass = t, Tensor._wrap(t.sum(axis=-1, keepdims=True))
        return (x.softmax(-1) * mass - Tensor._wrap(soft)) * self._scale(g)


def _target_array(target: Any, dtype: np.dtype) -> np.ndarray:
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    if t.dtype.kind == "f":
        return t.astype(dtype, copy=False)
    return t


def cross_entropy(logits: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Softmax-with-loss: mean (or sum, or per-sample) of -log softmax(logits)[target].

    ``logits`` has shape (..., C) with classes on the last axis; ``target`` holds class
    indices of shape (...) or probabilities / one-hot rows of shape (..., C).
    """
    _check_reduction(reduction)
    logits = as_tensor(logits)
    t = _target_array(target, logits.dtype)
    if t.dtype.kind not in "iuf":
        raise TypeError(f"cross_entropy: target must hold integer class indices or float "
                        f"probabilities, got dtype {t.dtype}")
    # (the target's shape and classes are checked by CrossEntropy.forward, on arrays)
    return CrossEntropy(t, reduction)(logits)


def mse_loss(prediction: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Mean (or sum, or elementwise) squared error (prediction - target)².

    The textbook's sum-of-squares error ½Σ(y - t)² is ``0.5 * mse_loss(y, t, 'sum')``.
    """
    _check_reduction(reduction)
    prediction = as_tensor(prediction)
    target = as_tensor(_target_array(target, prediction.dtype)
                       if not isinstance(target, Tensor) else target)
    if prediction.shape != target.shape:
        raise ValueError(f"mse_loss: prediction of shape {prediction.shape} and target of "
                         f"shape {target.shape} must have the same shape")
    diff = prediction - target
    squared = diff * diff
    if reduction == "mean":
        return squared.mean()
    return squared.sum() if reduction == "sum" else squared


class BCEWithLogits(Function):
    rule = "d BCE/dx = σ(x) - t, d BCE/dt = -x"

    def __init__(self, reduction: str) -> None:
        self.reduction = reduction

    def forward(self, x, t):
        # -[t ln σ(x) + (1-t) ln(1-σ(x))] = max(x,0) - x·t + ln(1 + e^(-|x|)): stable
        loss = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
        self.count = loss.size
        return _reduce(loss, self.reduction)

    def backward(self, g):
        x, t = self.inputs
        if self.reduction == "mean":
            g = g * (1.0 / self.count)
        gx = (sigmoid(x) - t) * g if self.needs_input_grad[0] else None
        gt = -x * g if self.needs_input_grad[1] else None
        return gx, gt


def binary_cross_entropy_with_logits(logits: Any, target: Any,
                                     reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of sigmoid(logits) against targets in [0, 1], fused stably."""
    _check_reduction(reduction)
    logits = as_tensor(logits)
    target = target if isinstance(target, Tensor) else \
        Tensor._wrap(_target_array(target, logits.dtype))
    if logits.shape != target.shape:
        raise ValueError(f"binary_cross_entropy_with_logits: logits of shape "
                         f"{logits.shape} and target of shape {target.shape} must have "
                         "the same shape")
    return BCEWithLogits(reduction)(logits, target)


def binary_cross_entropy(probabilities: Any, target: Any, reduction: str = "mean",
                         eps: float = 1e-7) -> Tensor:
    """Binary cross-entropy of probabilities (clipped to [eps, 1-eps] to avoid log 0)."""
    _check_reduction(reduction)
    p = as_tensor(probabilities).clip(eps, 1.0 - eps)
    t = as_tensor(_target_array(target, p.dtype)) if not isinstance(target, Tensor) \
        else target
    loss = -(t * p.log() + (1.0 - t) * (1.0 - p).log())
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


def dropout(x: Any, p: float = 0.5, training: bool = True,
            rng: np.random.Generator | None = None) -> Tensor:
    """Inverted dropout: zero each value with probability ``p`` and scale the rest by
    1/(1-p), so nothing changes at evaluation time (``training=False``)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    x = as_tensor(x)
    if not training or p == 0.0:
        return x
    rng = rng if rng is not None else np.random.default_rng()
    keep = rng.random(x.shape, dtype=np.float32 if x.dtype == np.float32 else np.float64)
    mask = (keep >= p).astype(x.dtype) * (1.0 / (1.0 - p))
    return x * Tensor._wrap(mask.astype(x.dtype, copy=False))


# re-exported for completeness: the numerically stable sigmoid on plain arrays
__all__ = ["linear", "softmax", "log_softmax", "logsumexp", "cross_entropy", "mse_loss",
           "binary_cross_entropy_with_logits", "binary_cross_entropy", "dropout",
           "stable_sigmoid"]
