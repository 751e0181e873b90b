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
from chainrule.tensor import Function, Tensor, _GradMode, as_floating, as_tensor

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
    formula = "y = x·W + b, W of shape (in, out)"

    def forward(self, x, weight, bias=None):
        if x.ndim > 2:  # one (N·T, in)·(in, out) product: NumPy's matmul over a stack of
            # matrices is about 1.7× slower (a language model's (20, 35, 100) inputs)
            y = (x.reshape(-1, x.shape[-1]) @ weight).reshape(x.shape[:-1] + weight.shape[1:])
        else:
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
        grads = ((g2 @ weight.T).reshape(x.shape) if needs[0] else None,
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


# --------------------------------------------------------------------------- embedding
def _sum_rows_by_index(g: np.ndarray, index: np.ndarray, rows: int) -> np.ndarray:
    """A (rows, D) array whose row k is the sum of the rows of ``g`` (n, D) whose index
    is k: sort the indices, add each run of equal ones with one ``reduceat``.

    (A third faster than ``np.add.at`` for 700 indices into a 10,000 × 650 table, and
    it never builds an n × rows one-hot matrix.)
    """
    out = np.zeros((rows, g.shape[1]), dtype=g.dtype)
    if index.size == 0:
        return out
    order = np.argsort(index, kind="stable")
    sorted_index = index[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_index[1:] != sorted_index[:-1])))
    out[sorted_index[starts]] = np.add.reduceat(g[order], starts, axis=0)
    return out


class Embedding(Function):
    """y[...] = W[index[...]]: the rows of the table picked by integer indices (a one-hot
    vector times W, without ever building the one-hot vector)."""

    rule = "dW[k] = Σ g over the positions whose index is k (repeated indices add up)"
    formula = "y = W[index]: rows of the table picked by integer indices"
    special = "the row padding_idx gets no gradient (as torch)"

    def __init__(self, index: np.ndarray, padding_idx: int | None) -> None:
        self.index, self.padding_idx = index, padding_idx

    def forward(self, weight):
        return np.take(weight, self.index, axis=0)

    def backward(self, g):
        (weight,) = self.inputs
        rows, dim = weight.shape
        index = self.index.reshape(-1)
        if self.padding_idx is not None:  # the padding row gets no gradient
            index = np.where(index == self.padding_idx, rows, index)  # a row past the end
            rows_out = rows + 1
        else:
            rows_out = rows
        if not _GradMode.enabled:  # the hot path: on arrays
            grad = _sum_rows_by_index(g.data.reshape(-1, dim), index, rows_out)
            return Tensor._wrap(grad[:rows] if rows_out != rows else grad)
        # create_graph: the same scatter-add, recorded (its own backward is a gather)
        from chainrule.ops.shape import ScatterAdd

        grad = ScatterAdd(index, (rows_out, dim))(g.reshape(-1, dim))
        return grad[:rows] if rows_out != rows else grad


def embedding(index: Any, weight: Any, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` (num_embeddings, embedding_dim) picked by the integer array
    ``index`` of any shape: the result has shape ``index.shape + (embedding_dim,)``.

    Gradients of repeated indices add up; the row ``padding_idx`` (if given) receives no
    gradient, as in ``torch.nn.functional.embedding``.
    """
    weight = as_tensor(weight)
    if weight.ndim != 2:
        raise ValueError(f"embedding: the table must be 2-D (num_embeddings, "
                         f"embedding_dim), got shape {weight.shape}")
    rows = weight.shape[0]
    index_array = index.data if isinstance(index, Tensor) else np.asarray(index)
    if index_array.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype "
                        f"{index_array.dtype}")
    if index_array.size and (index_array.min() < 0 or index_array.max() >= rows):
        bad = index_array[(index_array < 0) | (index_array >= rows)].reshape(-1)[0]
        raise IndexError(f"embedding: index {bad} is out of range for a table of {rows} "
                         f"rows (valid: 0..{rows - 1})")
    if padding_idx is not None:
        padding_idx = _normalize_padding_idx(padding_idx, rows)
    return Embedding(index_array, padding_idx)(weight)


def _normalize_padding_idx(padding_idx: int, rows: int) -> int:
    """``padding_idx`` in [-rows, rows) as a non-negative row number (torch allows
    negative ones, counted from the end)."""
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)) \
            or not -rows <= padding_idx < rows:
        raise ValueError(f"padding_idx must be an int in [{-rows}, {rows}) for a table of "
                         f"{rows} rows, got {padding_idx!r}")
    return int(padding_idx) % rows


# --------------------------------------------------------------------------- softmax family
def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    """log softmax(x) = x - max - ln Σ exp(x - max): never overflows."""
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


class Softmax(Function):
    rule = "dyᵢ/dxⱼ = yᵢ(δᵢⱼ - yⱼ), so dx = y·(g - Σ g·y)"
    formula = "yᵢ = e^xᵢ / Σⱼ e^xⱼ along an axis (shifted by the maximum: no overflow)"

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
    formula = "yᵢ = xᵢ - ln Σⱼ e^xⱼ along an axis (shifted by the maximum)"

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x):
        return _log_softmax(x, self.axis)

    def backward(self, g):
        return g - self.output.exp() * _sum(g, self.axis, keepdims=True)


class LogSumExp(Function):
    rule = "d ln Σ exp(x)/dxᵢ = softmax(x)ᵢ"
    formula = "y = ln Σ eˣ over the given axes (shifted by the maximum)"
    special = "all -∞ along an axis: y = -∞, not nan"

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
    x = as_floating(x)
    return Softmax(normalize_single_axis(axis, x.shape, "softmax"))(x)


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    """log(softmax(x)) along ``axis``, computed stably (not as log of softmax)."""
    x = as_floating(x)
    return LogSoftmax(normalize_single_axis(axis, x.shape, "log_softmax"))(x)


def logsumexp(x: Any, axis: int | tuple[int, ...] | None = None,
              keepdims: bool = False) -> Tensor:
    """ln Σ exp(x) over ``axis``, computed stably."""
    x = as_floating(x)
    return LogSumExp(normalize_axis(axis, x.shape, "logsumexp"), keepdims)(x)


# --------------------------------------------------------------------------- losses
def _reduce(values: np.ndarray, reduction: str, count: int | None = None) -> np.ndarray:
    """Sum or mean of ``values`` (the mean over ``count`` values, all by default), or
    the values themselves for 'none'."""
    if reduction == "none":
        return values
    total = np.add.reduce(values, axis=None)  # (cheaper than ndarray.mean's wrapper)
    count = values.size if count is None else count
    if reduction == "mean":
        total = total * (1.0 / count) if count else total * np.nan
    return np.asarray(total, dtype=values.dtype)


# Up to this many classes the work is done on the classes × samples transpose; beyond
# it, on the samples × classes rows as given (measured, 700 samples: 10 classes 13 vs
# 18 µs, 200 classes 251 vs 288 µs, 1,000 classes 1.5 vs 1.3 ms, 10,000 classes 37 vs
# 24 ms: the transposed copy then costs more than the short reductions save)
_TRANSPOSE_UP_TO = 512


class CrossEntropy(Function):
    """Softmax followed by the negative log-likelihood of the target, fused.

    Logits have the classes on the last axis; the target is either class indices (one
    fewer axis) or a probability / one-hot array of the logits' shape. Samples whose
    class index equals ``ignore_index`` add nothing to the loss or the gradient, and
    the mean is taken over the other samples (as in PyTorch).

    For few classes the work is done on the transpose, classes × samples: NumPy
    reduces along a short last axis (10 classes) about three times slower than across
    rows, and softmax needs a maximum and a sum for every sample. For a language
    model's 10,000 words the rows are long already, and copying them would cost more.
    """

    rule = "d CE/dx = softmax(x) - t (per sample; divided by N for the mean)"
    formula = ("L = -Σᵢ tᵢ·log softmax(x)ᵢ per sample (t one-hot of a class index, or "
               "probabilities), then the mean, the sum or none")
    domain = "class indices in 0..C-1, or probability rows of the logits' shape"
    special = "samples whose class is ignore_index add 0 and are left out of the mean (as torch)"

    def __init__(self, target: np.ndarray, reduction: str, ignore_index: int = -100) -> None:
        self.target, self.reduction, self.ignore_index = target, reduction, ignore_index

    def forward(self, x):
        if x.ndim == 0:
            raise ValueError("cross_entropy: logits need a class axis, got a scalar")
        classes = x.shape[-1]
        t = self.target
        self.ignored = None  # a mask of the samples whose target is ignore_index
        if t.dtype.kind in "iu":
            ignored = t == self.ignore_index
            if ignored.any():
                self.ignored = ignored.reshape(-1)
                t = np.where(ignored, 0, t)  # any valid class: its loss is zeroed below
        self._check_target(t, x.shape)
        # every position of the leading axes is a sample; the class axis of the arrays
        # worked on is 0 (classes × samples) or 1 (samples × classes)
        rows = x.reshape(-1, classes)
        samples = rows.shape[0]
        self.axis = 0 if classes <= _TRANSPOSE_UP_TO else 1
        xs = rows.T.copy() if self.axis == 0 else rows
        shifted = xs - np.maximum.reduce(xs, axis=self.axis, keepdims=True)  # stable
        if t.dtype.kind in "iu":  # class indices: -log p[target] = log Σ exp - x[target]
            # the flat positions of (sample, target class) in the arrays: one index
            # array is about three times faster than a pair
            t = t.reshape(-1).astype(np.intp, copy=False)
            if self.axis == 0:
                self.picked = t * samples + cached_array("arange", samples)
            else:
                self.picked = cached_array("arange", samples) * classes + t
            picked_logits = shifted.reshape(-1)[self.picked]
        else:  # probabilities: -Σ t log p = Σt · log Σ exp - Σ t·shifted
            tt = t.reshape(-1, classes)
            if self.axis == 0:
                tt = tt.T
            target_mass = np.add.reduce(tt, axis=self.axis)
            target_logits = np.add.reduce(tt * shifted, axis=self.axis)
        self.exp = np.exp(shifted, out=shifted)  # shifted itself is no longer needed
        self.total = np.add.reduce(self.exp, axis=self.axis, keepdims=True)  # Σ exp
        log_total = np.log(self.total).reshape(-1)
        if t.dtype.kind in "iu":
            nll = log_total - picked_logits
        else:
            nll = target_mass * log_total - target_logits
        if self.ignored is not None:
            nll[self.ignored] = 0.0
        self.count = nll.size - (0 if self.ignored is None else int(self.ignored.sum()))
        return _reduce(nll.reshape(x.shape[:-1]), self.reduction, self.count)

    def _check_target(self, t: np.ndarray, shape: tuple[int, ...]) -> None:
        classes = shape[-1]
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
                                 f"{classes} classes (valid: 0..{classes - 1}, or "
                                 f"ignore_index={self.ignore_index} to skip a sample)")
        elif t.shape != shape:
            raise ValueError(
                f"cross_entropy: probability/one-hot target of shape {t.shape} must have "
                f"the logits' shape {shape} (or give class indices of shape "
                f"{shape[:-1]})")

    def _scale(self, g):
        """The upstream gradient as a factor per sample (÷N for the mean)."""
        if self.reduction == "mean":
            return g * (1.0 / self.count) if self.count else g * np.nan
        if self.reduction == "sum" or not isinstance(g, Tensor):  # arrays come flat
            return g
        return g.unsqueeze(-1)

    def backward(self, g):
        (x,) = self.inputs
        t = self.target
        keep = None if self.ignored is None else ~self.ignored
        if not _GradMode.enabled:
            # the hot path of training, on arrays: (softmax(x) - onehot(t)) · scale, with
            # the scale folded into the division by Σ exp
            scale = self._scale(g.data if g.data.ndim == 0 else g.data.reshape(-1))
            if keep is not None:  # ignored samples send nothing back
                scale = scale * keep.astype(x.dtype)
            if np.ndim(scale):  # one factor per sample, along the samples axis
                scale = scale.reshape(self.total.shape)
            grad = self.exp * (scale / self.total)
            if t.dtype.kind in "iu":
                grad.reshape(-1)[self.picked] -= np.broadcast_to(
                    scale, self.total.shape).reshape(-1)
            else:
                tt = t.reshape(-1, x.shape[-1])
                if self.axis == 0:
                    tt = tt.T
                grad *= np.add.reduce(tt, axis=self.axis, keepdims=True)
                grad -= tt * scale
            if self.axis == 0:
                grad = grad.T  # back to samples × classes
            return Tensor._wrap(grad.reshape(x.shape))
        # create_graph: the same formula with the softmax recorded, so that it can be
        # differentiated again: d(-Σ t log softmax(x))/dx = softmax(x)·Σt - t
        if t.dtype.kind in "iu":
            soft = np.zeros(x.shape, dtype=x.dtype)
            np.put_along_axis(soft, np.where(t == self.ignore_index, 0, t)[..., None], 1.0,
                              axis=-1)
            mass = 1.0
        else:
            soft, mass = t, Tensor._wrap(t.sum(axis=-1, keepdims=True))
        grad = (x.softmax(-1) * mass - Tensor._wrap(soft)) * self._scale(g)
        if keep is not None:
            grad = grad * Tensor._wrap(keep.reshape(x.shape[:-1] + (1,)).astype(x.dtype))
        return grad


def _target_array(target: Any, dtype: np.dtype) -> np.ndarray:
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    if t.dtype.kind == "f":
        return t.astype(dtype, copy=False)
    return t


def _target_tensor(target: Any, prediction: Tensor) -> Tensor:
    """A loss's target as a Tensor. One that needs no gradient is data, and a floating
    one takes the prediction's dtype: a float64 NumPy target never makes a float32
    network's loss float64 (PyTorch would promote; its targets are float32 already)."""
    if isinstance(target, Tensor) and target.requires_grad:
        return target
    return Tensor._wrap(_target_array(target, prediction.dtype))


def cross_entropy(logits: Any, target: Any, reduction: str = "mean",
                  ignore_index: int = -100) -> Tensor:
    """Softmax-with-loss: mean (or sum, or per-sample) of -log softmax(logits)[target].

    ``logits`` has shape (..., C) with classes on the last axis: (N, C), or (N, T, V)
    for a sequence model; ``target`` holds class indices of shape (...) or
    probabilities / one-hot rows of shape (..., C). Samples whose class index is
    ``ignore_index`` (-100 by default, as in PyTorch; the padding token's id, say)
    count for nothing: their loss and gradient are 0 and the mean is over the others.
    """
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"cross_entropy: ignore_index must be an int, got {ignore_index!r}")
    _check_reduction(reduction)
    logits = as_tensor(logits)
    t = _target_array(target, logits.dtype)
    if t.dtype.kind not in "iuf":
        raise TypeError(f"cross_entropy: target must hold integer class indices or float "
                        f"probabilities, got dtype {t.dtype}")
    # (the target's shape and classes are checked by CrossEntropy.forward, on arrays)
    return CrossEntropy(t, reduction, int(ignore_index))(logits)


def mse_loss(prediction: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Mean (or sum, or elementwise) squared error (prediction - target)².

    The textbook's sum-of-squares error ½Σ(y - t)² is ``0.5 * mse_loss(y, t, 'sum')``.
    """
    _check_reduction(reduction)
    prediction = as_tensor(prediction)
    target = _target_tensor(target, prediction)
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
    formula = "L = -[t·ln σ(x) + (1-t)·ln(1-σ(x))] = max(x, 0) - x·t + ln(1 + e^(-|x|))"
    domain = "targets t in [0, 1]"

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
    target = _target_tensor(target, logits)
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
    t = _target_tensor(target, p)
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
__all__ = ["linear", "embedding", "softmax", "log_softmax", "logsumexp", "cross_entropy",
           "mse_loss", "binary_cross_entropy_with_logits", "binary_cross_entropy",
           "dropout", "stable_sigmoid"]
