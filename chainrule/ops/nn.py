"""Operations of neural networks: the affine layer, the softmax family and the losses.

They are fused primitives (one node each, backward written out), because these are
the hot path of training and their fused forms are also the numerically stable ones.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from chainrule.ops import _parallel
from chainrule.ops._checks import normalize_axis, normalize_single_axis
from chainrule.ops._constants import cached_array
from chainrule.ops.elementwise import maximum, sigmoid, softplus, stable_sigmoid
from chainrule.ops.reduction import sum as _sum
from chainrule.tensor import Function, Tensor, _GradMode, as_floating, as_tensor

_REDUCTIONS = ("mean", "sum", "none")
_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}  # by item size


def _check_reduction(reduction: str) -> None:
    if not isinstance(reduction, str):
        # chainrule's losses take the reduction third, where some of PyTorch's take a
        # weight: say so, rather than just "not a reduction"
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got a "
                         f"{type(reduction).__name__}; the losses here take the reduction "
                         f"as their third argument: give a weight by name (weight=...)")
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
            y = _parallel.matmul(x.reshape(-1, x.shape[-1]), weight).reshape(
                x.shape[:-1] + weight.shape[1:])
        else:
            y = _parallel.matmul(x, weight)  # (a plain @ unless 2-D and large)
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
            # .T, .reshape and .sum, so the lines below serve both up to the products)
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
        if recording:
            return ((g2 @ weight.T).reshape(x.shape) if needs[0] else None,
                    x2.T @ g2 if needs[1] else None,
                    gb)[:len(needs)]
        # on arrays, the products get the threads (see ops/_parallel.py)
        grads = (_parallel.matmul(g2, weight.T).reshape(x.shape) if needs[0] else None,
                 _parallel.matmul(x2.T, g2) if needs[1] else None,
                 gb)[:len(needs)]
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


class ClassTargets(NamedTuple):
    """Class-index targets, checked, with what the losses need from them: the class of
    every sample (flat; ignored samples read class 0 and count for nothing), each
    sample's factor w[target] (0 where ignored; None when every factor is 1), which
    samples count (None: all), and the mean's divisor: the sum of the factors
    (PyTorch's weighted mean) or the number of samples that count."""

    index: np.ndarray
    factor: np.ndarray | None
    keep: np.ndarray | None
    denominator: float


def _class_targets(t: np.ndarray, shape: tuple[int, ...], weight: np.ndarray | None,
                   ignore_index: int, dtype: np.dtype, op: str) -> ClassTargets:
    """Check class indices ``t`` against scores of ``shape`` (classes last)."""
    classes = shape[-1]
    if t.shape != shape[:-1]:
        also = f" (or probabilities of shape {shape})" if op == "cross_entropy" else ""
        raise ValueError(f"{op}: class-index target of shape {t.shape} does not fit scores "
                         f"of shape {shape}; expected target shape {shape[:-1]}{also}")
    t = t.reshape(-1)
    ignored = t == ignore_index
    keep = None
    if ignored.any():
        keep = ~ignored
        t = np.where(ignored, 0, t)  # any valid class: its loss is zeroed
    # one pass checks both ends: seen as unsigned, a negative class is huge
    if t.size and np.maximum.reduce(t.view(_UNSIGNED[t.itemsize]), axis=None) >= classes:
        bad = t[(t < 0) | (t >= classes)][0]
        raise ValueError(f"{op}: target class {bad} is out of range for {classes} classes "
                         f"(valid: 0..{classes - 1}, or ignore_index={ignore_index} to skip "
                         f"a sample)")
    t = t.astype(np.intp, copy=False)
    if weight is not None:
        factor = weight[t] if keep is None else weight[t] * keep
        return ClassTargets(t, factor, keep, float(np.add.reduce(factor, axis=None)))
    if keep is not None:
        return ClassTargets(t, keep.astype(dtype), keep, float(np.count_nonzero(keep)))
    return ClassTargets(t, None, None, float(t.size))


def _loss_scale(g, reduction: str, denominator: float):
    """The upstream gradient as a factor per sample: g/denominator for the mean, g for
    the sum, and for 'none' g per sample (a tensor gets a class axis to broadcast on;
    an array stays flat)."""
    if reduction == "mean":
        return g * (1.0 / denominator) if denominator else g * np.nan
    if reduction == "sum" or not isinstance(g, Tensor):
        return g
    return g.unsqueeze(-1)


class CrossEntropy(Function):
    """Softmax followed by the cross-entropy with the target, fused.

    Logits have the classes on the last axis. With class-index targets tₙ, class
    weights w and label smoothing ε, sample n's loss is (PyTorch's definition)
        (1-ε)·w[tₙ]·(-log pₙ[tₙ]) + (ε/C)·Σ_c w_c·(-log pₙ[c]),
    which is Σ_c qₙ_c·(-log pₙ_c) for the target distribution q; ignored samples add
    nothing, and the mean divides by Σₙ w[tₙ] over the others. With probability
    targets t, q = w·((1-ε)·t + ε/C) and the mean divides by the number of samples.
    Then d/dx = p·Σq - q, and for probability targets d/dt = -(1-ε)·w·log p.

    For few classes the work is done on the transpose, classes × samples: NumPy
    reduces along a short last axis (10 classes) about three times slower than across
    rows, and softmax needs a maximum and a sum for every sample. For a language
    model's 10,000 words the rows are long already, and copying them would cost more.
    """

    rule = "d CE/dx = softmax(x)·Σq - q, q the target distribution (one-hot, smoothed, " \
           "weighted); d CE/dt = -(1-ε)·w·log softmax(x) for probability targets"
    formula = ("L = -Σ_c q_c·log softmax(x)_c per sample, q = w·((1-ε)·t + ε/C) (t one-hot "
               "of a class index, or probabilities), then the mean (÷ Σ w[t] over counted "
               "class indices, ÷ N for probabilities), the sum or none")
    domain = "class indices in 0..C-1, or probability rows of the logits' shape"
    special = "samples whose class is ignore_index add 0 and are left out of the mean (as torch)"

    def __init__(self, reduction: str, classes: ClassTargets | None,
                 weight: np.ndarray | None = None, smoothing: float = 0.0) -> None:
        self.reduction, self.classes = reduction, classes  # classes: None for probabilities
        self.weight, self.smoothing = weight, smoothing

    def _per_class(self, w: np.ndarray) -> np.ndarray:
        """A (C,) vector shaped to broadcast along the class axis of the work arrays."""
        return w.reshape(-1, 1) if self.axis == 0 else w

    def _per_sample(self, a: Any) -> Any:
        """A flat per-sample array shaped to broadcast along the samples axis."""
        return a.reshape(self.total.shape) if np.ndim(a) else a

    def forward(self, x, t=None):
        classes = x.shape[-1]
        eps, w = self.smoothing, self.weight
        # every position of the leading axes is a sample; the class axis of the arrays
        # worked on is 0 (classes × samples) or 1 (samples × classes)
        rows = x.reshape(-1, classes)
        samples = rows.shape[0]
        self.axis = 0 if classes <= _TRANSPOSE_UP_TO else 1
        xs = rows.T.copy() if self.axis == 0 else rows
        shifted = xs - np.maximum.reduce(xs, axis=self.axis, keepdims=True)  # stable
        if self.classes is not None:  # class indices: -log p[t] = log Σ exp - x[t]
            index = self.classes.index
            # the flat positions of (sample, target class) in the arrays: one index
            # array is about three times faster than a pair
            if self.axis == 0:
                self.picked = index * samples + cached_array("arange", samples)
            else:
                self.picked = cached_array("arange", samples) * classes + index
            picked_logits = shifted.reshape(-1)[self.picked]
            if eps:  # Σ_c w_c·shifted_c, for the smoothing term
                smooth_logits = np.add.reduce(
                    shifted if w is None else shifted * self._per_class(w), axis=self.axis)
        else:  # probabilities: Σ_c q_c·(-log p_c) = Σq · log Σ exp - Σ q·shifted
            q = t.reshape(-1, classes)
            if self.axis == 0:
                q = q.T
            if eps:
                q = q * (1.0 - eps) + eps / classes
            if w is not None:
                q = q * self._per_class(w)
            self.q = q
            target_mass = np.add.reduce(q, axis=self.axis)
            target_logits = np.add.reduce(q * shifted, axis=self.axis)
        self.exp = np.exp(shifted, out=shifted)  # shifted itself is no longer needed
        self.total = np.add.reduce(self.exp, axis=self.axis, keepdims=True)  # Σ exp
        log_total = np.log(self.total).reshape(-1)
        if self.classes is None:
            loss = target_mass * log_total - target_logits
            self.denominator = float(samples)
        else:
            loss = log_total - picked_logits
            factor, keep = self.classes.factor, self.classes.keep
            if factor is not None:
                loss *= factor
            if eps:
                total_weight = classes if w is None else np.add.reduce(w)
                smooth = total_weight * log_total - smooth_logits
                if keep is not None:
                    smooth *= keep
                loss = loss * (1.0 - eps) + smooth * (eps / classes)
            self.denominator = self.classes.denominator
        return _reduce(loss.reshape(x.shape[:-1]), self.reduction, self.denominator)

    def backward(self, g):
        x = self.inputs[0]
        needs = self.needs_input_grad
        gx = self._logits_grad(g) if needs[0] else None
        if len(self.inputs) == 1:
            return gx
        gt = None
        if needs[1]:  # probability targets: d/dt = -(1-ε)·w·log p
            factor = 1.0 - self.smoothing if self.weight is None else \
                (1.0 - self.smoothing) * self.weight
            gt = x.log_softmax(-1) * (-factor) * _loss_scale(g, self.reduction,
                                                             self.denominator)
        return gx, gt

    def _logits_grad(self, g):
        x = self.inputs[0]
        classes, eps, w = x.shape[-1], self.smoothing, self.weight
        if not _GradMode.enabled:
            # the hot path of training, on arrays: (p·Σq - q)·scale, with the scale
            # folded into the division by Σ exp
            scale = _loss_scale(g.data if g.data.ndim == 0 else g.data.reshape(-1),
                                self.reduction, self.denominator)
            if self.classes is None:
                q = self.q
                mass = np.add.reduce(q, axis=self.axis, keepdims=True)
                grad = self.exp * (self._per_sample(scale) * mass / self.total)
                grad -= q * self._per_sample(scale)
            else:
                factor, keep = self.classes.factor, self.classes.keep
                # q = a·onehot(t) + b·w, with a = (1-ε)·factor, b = (ε/C)·keep per sample
                a = scale * (1.0 - eps) if factor is None else scale * (1.0 - eps) * factor
                mass = a
                if eps:
                    b = scale * (eps / classes) if keep is None else \
                        scale * (eps / classes) * keep
                    mass = a + b * (classes if w is None else np.add.reduce(w))
                grad = self.exp * (self._per_sample(mass) / self.total)
                grad.reshape(-1)[self.picked] -= np.broadcast_to(
                    self._per_sample(a), self.total.shape).reshape(-1)
                if eps:
                    b = self._per_sample(b)
                    grad -= b if w is None else b * self._per_class(w)
            if self.axis == 0:
                grad = grad.T  # back to samples × classes
            return Tensor._wrap(grad.reshape(x.shape))
        # create_graph: the same formula with the softmax recorded, so that it can be
        # differentiated again: d(-Σ q log softmax(x))/dx = softmax(x)·Σq - q
        if self.classes is None:
            t = self.inputs[1]
            q = t * (1.0 - eps) + eps / classes if eps else t
            if w is not None:
                q = q * Tensor._wrap(w)
        else:
            factor, keep = self.classes.factor, self.classes.keep
            dense = np.zeros((self.classes.index.size, classes), dtype=x.dtype)
            dense[np.arange(dense.shape[0]), self.classes.index] = \
                (1.0 - eps) * (1.0 if factor is None else factor)
            if eps:
                smooth = np.ones(classes, x.dtype) if w is None else w
                dense += (eps / classes) * (smooth if keep is None else
                                             keep[:, None] * smooth)
            q = Tensor._wrap(dense.reshape(x.shape))
        mass = q.sum(axis=-1, keepdims=True)
        return (x.softmax(-1) * mass - q) * _loss_scale(g, self.reduction, self.denominator)


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


def _class_weight(weight: Any, classes: int, dtype: np.dtype, op: str) -> np.ndarray | None:
    """The per-class ``weight`` as a (C,) array of the scores' dtype (None: none)."""
    if weight is None:
        return None
    if isinstance(weight, Tensor) and weight.requires_grad:
        raise ValueError(f"{op}: the class weight is a constant (as in PyTorch, it gets no "
                         f"gradient); pass weight.detach()")
    w = weight.data if isinstance(weight, Tensor) else np.asarray(weight)
    if w.dtype.kind not in "iuf" or w.shape != (classes,):
        got = f"shape {w.shape}" if w.dtype.kind in "iuf" else f"dtype {w.dtype}"
        raise ValueError(f"{op}: weight must be a vector of {classes} numbers, one per "
                         f"class, got {got}")
    return w.astype(dtype)


def _check_ignore_index(ignore_index: Any, op: str) -> int:
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"{op}: ignore_index must be an int, got {ignore_index!r}")
    return int(ignore_index)


def cross_entropy(logits: Any, target: Any, reduction: str = "mean",
                  ignore_index: int = -100, weight: Any = None,
                  label_smoothing: float = 0.0) -> Tensor:
    """Softmax-with-loss: mean (or sum, or per-sample) of -log softmax(logits)[target].

    ``logits`` has shape (..., C) with classes on the last axis: (N, C), or (N, T, V)
    for a sequence model (PyTorch puts the classes on axis 1; for (N, C) the two
    agree); ``target`` holds class indices of shape (...) or probabilities / one-hot
    rows of shape (..., C), which get a gradient too when they require one.

    As ``torch.nn.functional.cross_entropy``: samples whose class index is
    ``ignore_index`` (-100 by default; the padding token's id, say) count for nothing;
    ``weight`` (C,) scales each class's loss, and the mean over class indices divides
    by the sum of the targets' weights; ``label_smoothing`` ε mixes the target with the
    uniform distribution, (1-ε)·target + ε/C.
    """
    op = "cross_entropy"
    ignore_index = _check_ignore_index(ignore_index, op)
    _check_reduction(reduction)
    if isinstance(label_smoothing, bool) or not isinstance(
            label_smoothing, (int, float, np.integer, np.floating)) \
            or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be a number from 0.0 to 1.0, got "
                         f"{label_smoothing!r}")
    logits = as_tensor(logits)
    if logits.ndim == 0:
        raise ValueError(f"{op}: logits need a class axis, got a scalar")
    w = _class_weight(weight, logits.shape[-1], logits.dtype, op)
    smoothing = float(label_smoothing)
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    if t.dtype.kind in "iu":
        classes = _class_targets(t, logits.shape, w, ignore_index, logits.dtype, op)
        return CrossEntropy(reduction, classes, w, smoothing)(logits)
    if t.dtype.kind != "f":
        raise TypeError(f"{op}: target must hold integer class indices or float "
                        f"probabilities, got dtype {t.dtype}")
    if t.shape != logits.shape:
        raise ValueError(f"{op}: probability/one-hot target of shape {t.shape} must have "
                         f"the logits' shape {logits.shape} (or give class indices of shape "
                         f"{logits.shape[:-1]})")
    if ignore_index >= 0:
        raise ValueError(f"{op}: ignore_index={ignore_index} applies to class indices, not "
                         f"to probability targets (as in PyTorch); leave it at -100")
    target = target if isinstance(target, Tensor) else Tensor._wrap(t)
    if target.dtype != logits.dtype:
        target = target.astype(logits.dtype)
    return CrossEntropy(reduction, None, w, smoothing)(logits, target)


class NLLLoss(Function):
    """The negative log-likelihood of the target class, given log-probabilities:
    sample n's loss is -w[tₙ]·x[n, tₙ]; ignored samples add nothing, and the mean
    divides by Σₙ w[tₙ] over the others (PyTorch's weighted mean)."""

    rule = "d NLL/dx[n, tₙ] = -w[tₙ] (÷ Σ w[tₙ] for the mean); 0 for the other classes"
    formula = "L = -w[tₙ]·x[n, tₙ] per sample, then the mean (÷ Σ w[tₙ]), the sum or none"
    domain = "class indices in 0..C-1 (x: log-probabilities, classes last)"
    special = "samples whose class is ignore_index add 0 and are left out of the mean (as torch)"

    def __init__(self, classes: ClassTargets, reduction: str) -> None:
        self.classes, self.reduction = classes, reduction

    def forward(self, x):
        rows = x.reshape(-1, x.shape[-1])
        loss = -rows[np.arange(rows.shape[0]), self.classes.index]
        if self.classes.factor is not None:
            loss *= self.classes.factor
        return _reduce(loss.reshape(x.shape[:-1]), self.reduction, self.classes.denominator)

    def backward(self, g):
        # linear in x: the gradient is g times a constant, -factor at each target
        (x,) = self.inputs
        slope = np.zeros((self.classes.index.size, x.shape[-1]), dtype=x.dtype)
        factor = self.classes.factor
        slope[np.arange(slope.shape[0]), self.classes.index] = -1.0 if factor is None \
            else -factor
        return _loss_scale(g, self.reduction, self.classes.denominator) * \
            Tensor._wrap(slope.reshape(x.shape))


def nll_loss(log_probabilities: Any, target: Any, reduction: str = "mean",
             ignore_index: int = -100, weight: Any = None) -> Tensor:
    """The negative log-likelihood loss -w[t]·x[t] of log-probabilities ``x`` (a
    ``log_softmax`` output) of shape (..., C), classes last, for class indices
    ``target`` of shape (...), as ``torch.nn.functional.nll_loss`` (the arguments in
    the order of chainrule's other losses, reduction third): ``weight`` (C,) scales
    each class, samples whose target is ``ignore_index``
    count for nothing, and the mean divides by the sum of the targets' weights.
    ``nll_loss(log_softmax(x), t)`` equals ``cross_entropy(x, t)``."""
    op = "nll_loss"
    ignore_index = _check_ignore_index(ignore_index, op)
    _check_reduction(reduction)
    x = as_tensor(log_probabilities)
    if x.ndim == 0:
        raise ValueError(f"{op}: the log-probabilities need a class axis, got a scalar")
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices, got dtype "
                        f"{t.dtype}")
    w = _class_weight(weight, x.shape[-1], x.dtype, op)
    return NLLLoss(_class_targets(t, x.shape, w, ignore_index, x.dtype, op), reduction)(x)


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


def _elementwise_weight(weight: Any, shape: tuple[int, ...], dtype: np.dtype, name: str,
                        op: str) -> np.ndarray | None:
    """A constant factor that broadcasts to the loss's ``shape`` (None: none)."""
    if weight is None:
        return None
    if isinstance(weight, Tensor) and weight.requires_grad:
        raise ValueError(f"{op}: {name} is a constant (as in PyTorch, it gets no gradient); "
                         f"pass {name}.detach()")
    w = weight.data if isinstance(weight, Tensor) else np.asarray(weight)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"{op}: {name} must hold numbers, got dtype {w.dtype}")
    try:
        np.broadcast_shapes(w.shape, shape)
    except ValueError:
        raise ValueError(f"{op}: {name} of shape {w.shape} does not broadcast to the input's "
                         f"shape {shape}") from None
    if np.broadcast_shapes(w.shape, shape) != shape:
        raise ValueError(f"{op}: {name} of shape {w.shape} would widen the input's shape "
                         f"{shape}; it must broadcast to it")
    return w.astype(dtype)


def _times(a, factor: np.ndarray | None):
    """``a``·factor for an optional constant factor."""
    return a if factor is None else a * Tensor._wrap(factor)


class BCEWithLogits(Function):
    """Binary cross-entropy of σ(x) against t, fused and stable, with PyTorch's options:
    L = -w·[p·t·log σ(x) + (1 - t)·log(1 - σ(x))], p the positives' weight
      = w·[(1 - t)·x + (1 + (p - 1)·t)·softplus(-x)]."""

    rule = "dL/dx = w·((p·t + 1 - t)·σ(x) - p·t) (σ(x) - t unweighted), " \
           "dL/dt = w·(p·softplus(-x) - softplus(x)) (-x unweighted)"
    formula = "L = w·[(1-t)·x + (1 + (p-1)·t)·softplus(-x)] = -w·[p·t·ln σ(x) + " \
              "(1-t)·ln(1-σ(x))], p = pos_weight"
    domain = "targets t in [0, 1]"

    def __init__(self, reduction: str, weight: np.ndarray | None = None,
                 pos_weight: np.ndarray | None = None) -> None:
        self.reduction, self.weight, self.pos_weight = reduction, weight, pos_weight

    def forward(self, x, t):
        # softplus(-x) = ln(1 + e^(-x)) = max(-x, 0) + ln(1 + e^(-|x|)): stable
        softplus_neg = np.maximum(-x, 0) + np.log1p(np.exp(-np.abs(x)))
        if self.pos_weight is None:
            loss = (1 - t) * x + softplus_neg
        else:
            loss = (1 - t) * x + (1 + (self.pos_weight - 1) * t) * softplus_neg
        if self.weight is not None:
            loss = loss * self.weight
        self.count = loss.size
        return _reduce(loss, self.reduction)

    def backward(self, g):
        x, t = self.inputs
        if self.reduction == "mean":
            g = g * (1.0 / self.count)
        g = _times(g, self.weight)
        needs = self.needs_input_grad
        if self.pos_weight is None:
            gx = (sigmoid(x) - t) * g if needs[0] else None
            gt = -x * g if needs[1] else None
            return gx, gt
        positive = t * Tensor._wrap(self.pos_weight)  # p·t
        gx = ((positive + 1.0 - t) * sigmoid(x) - positive) * g if needs[0] else None
        gt = (softplus(-x) * Tensor._wrap(self.pos_weight) - softplus(x)) * g \
            if needs[1] else None
        return gx, gt


def binary_cross_entropy_with_logits(logits: Any, target: Any, reduction: str = "mean",
                                     weight: Any = None, pos_weight: Any = None) -> Tensor:
    """Binary cross-entropy of sigmoid(logits) against targets in [0, 1], fused stably,
    as ``torch.nn.functional.binary_cross_entropy_with_logits``: ``weight`` scales each
    element's loss (it broadcasts to the logits), ``pos_weight`` the positive term
    (one per class, broadcasting along the last axis: > 1 favours recall). Both are
    constants; the target gets a gradient when it requires one."""
    op = "binary_cross_entropy_with_logits"
    _check_reduction(reduction)
    logits = as_tensor(logits)
    target = _target_tensor(target, logits)
    if logits.shape != target.shape:
        raise ValueError(f"{op}: logits of shape {logits.shape} and target of shape "
                         f"{target.shape} must have the same shape")
    if target.dtype != logits.dtype:
        target = target.astype(logits.dtype)
    w = _elementwise_weight(weight, logits.shape, logits.dtype, "weight", op)
    p = _elementwise_weight(pos_weight, logits.shape, logits.dtype, "pos_weight", op)
    return BCEWithLogits(reduction, w, p)(logits, target)


_LOG_FLOOR = -100.0  # PyTorch clamps log p and log(1 - p) here, so that p = 0 or 1 is finite
_SLOPE_FLOOR = 1e-12  # and the gradient's p·(1 - p) here


class BinaryCrossEntropy(Function):
    """Binary cross-entropy of probabilities p against targets t, as PyTorch's:
    L = -w·[t·max(log p, -100) + (1 - t)·max(log(1 - p), -100)]."""

    rule = "dL/dp = w·(p - t)/max(p(1 - p), 1e-12), dL/dt = -w·logit(p) = w·(ln(1-p) - ln p)"
    formula = "L = -w·[t·max(ln p, -100) + (1-t)·max(ln(1-p), -100)]"
    domain = "probabilities p in [0, 1], targets t in [0, 1]"
    special = "p = 0 or 1: the logs are clamped at -100 and p(1-p) at 1e-12 (as torch)"

    def __init__(self, reduction: str, weight: np.ndarray | None = None) -> None:
        self.reduction, self.weight = reduction, weight

    def forward(self, p, t):
        with np.errstate(divide="ignore"):  # log 0 = -inf, clamped to -100 below
            log_p = np.maximum(np.log(p), _LOG_FLOOR)
            log_q = np.maximum(np.log1p(-p), _LOG_FLOOR)
        loss = -(t * log_p + (1 - t) * log_q)
        if self.weight is not None:
            loss = loss * self.weight
        self.count = loss.size
        return _reduce(loss, self.reduction)

    def backward(self, g):
        p, t = self.inputs
        if self.reduction == "mean":
            g = g * (1.0 / self.count)
        g = _times(g, self.weight)
        needs = self.needs_input_grad
        gp = gt = None
        if needs[0]:
            gp = (p - t) / maximum(p * (1.0 - p), _SLOPE_FLOOR) * g
        if needs[1]:
            gt = ((1.0 - p).log() - p.log()) * g
        return gp, gt


def binary_cross_entropy(probabilities: Any, target: Any, reduction: str = "mean",
                         weight: Any = None) -> Tensor:
    """Binary cross-entropy of probabilities in [0, 1] against targets in [0, 1], as
    ``torch.nn.functional.binary_cross_entropy``: log p and log(1 - p) are clamped at
    -100, so p = 0 or 1 gives a finite loss; ``weight`` scales each element's loss (it
    broadcasts to the input). For logits, ``binary_cross_entropy_with_logits`` is the
    stabler choice."""
    op = "binary_cross_entropy"
    _check_reduction(reduction)
    p = as_tensor(probabilities)
    if p.dtype.kind != "f":
        raise TypeError(f"{op}: needs floating-point probabilities, got dtype {p.dtype}")
    if p.size and not (np.min(p.data) >= 0 and np.max(p.data) <= 1):
        bad = p.data[~((p.data >= 0) & (p.data <= 1))].reshape(-1)[0]
        raise ValueError(f"{op}: every probability must be in [0, 1], got {bad}; for "
                         f"logits use binary_cross_entropy_with_logits")
    t = _target_tensor(target, p)
    if t.shape != p.shape:
        raise ValueError(f"{op}: probabilities of shape {p.shape} and target of shape "
                         f"{t.shape} must have the same shape")
    if t.dtype != p.dtype:
        t = t.astype(p.dtype)
    return BinaryCrossEntropy(reduction, _elementwise_weight(weight, p.shape, p.dtype,
                                                             "weight", op))(p, t)


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
           "nll_loss", "mse_loss", "binary_cross_entropy_with_logits", "binary_cross_entropy",
           "dropout", "stable_sigmoid"]
