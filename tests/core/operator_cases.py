"""The table of operations: every ``Function`` subclass in ``chainrule.ops`` with the
sample inputs that check it.

One table serves two readers:

* ``tests/core/test_core_operators.py`` runs every case as a float64 central-difference
  gradient check and, where the case names a torch counterpart, compares the forward
  value and the gradients with PyTorch's;
* ``docs/update_docs.py`` renders ``docs/operators.md`` from the operations' own class
  attributes (``formula``, ``rule``, ``domain``, ``special``) and, from this table, each
  operation's torch counterpart and the tests that check it.

Operations are discovered (``operations()``), not listed: a new ``Function`` subclass
anywhere under ``chainrule.ops`` makes ``test_every_operation_has_a_case`` fail until a
case is added here, and the page's staleness test fail until the page is regenerated.

To add an operation (see also the "Adding an operation" section of docs/operators.md):

1. give the class ``rule`` (the local derivative), ``formula`` (what forward computes)
   and, where they apply, ``domain`` and ``special`` (kinks and the gradient's value
   there by convention);
2. add a case below with ``@case(TheClass, "what-it-tries", torch="torch.the_op")``: a
   function of a NumPy generator returning a ``Sample`` (float64 input arrays, the
   chainrule function of those inputs, and the same computation in torch). Keep inputs
   small, with odd shapes and broadcasting where the operation broadcasts, and away
   from kinks (the gradient check nudges each input by 1e-6);
3. run ``python docs/update_docs.py`` and commit the regenerated page.

A class that only serves as the base of other operations (no operation of its own) goes
in ``BASE_CLASSES`` instead.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import chainrule.functional as F
import chainrule.ops
from chainrule.ops import elementwise as E
from chainrule.ops import nn as N
from chainrule.ops.arithmetic import (
    Add,
    AsType,
    BinaryElementwise,
    Div,
    MatMul,
    Mul,
    Neg,
    Pow,
    PowScalar,
    Sub,
)
from chainrule.ops.conv import (
    Col2Im,
    Conv2d,
    Conv2dInputGrad,
    Conv2dWeightGrad,
    Im2Col,
    Window,
)
from chainrule.ops.conv_transpose import ConvTranspose2d
from chainrule.ops.normalization import Normalize
from chainrule.ops.padding import Pad, PadCopy, PadCopyAdjoint
from chainrule.ops.pooling import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    AvgPoolScatter,
    MaxPool2d,
    Pool,
    PoolScatter,
    PoolSelect,
)
from chainrule.ops.recurrent import GRU, LSTM, RNN, Recurrence, _Alias
from chainrule.ops.reduction import BroadcastTo, Extremum, Sum, SumTo
from chainrule.ops.shape import Concatenate, GetItem, Reshape, ScatterAdd, Transpose
from chainrule.tensor import Function, Tensor

TEST_FILE = "tests/core/test_core_operators.py"
GRADIENT_TEST, TORCH_TEST = "test_gradient", "test_torch_parity"


# --------------------------------------------------------------------------- discovery
def operations() -> list[type[Function]]:
    """Every ``Function`` subclass defined in a module of ``chainrule.ops`` (all of its
    modules are imported first, so a new module is found too), in the order of their
    module and name."""
    for module in pkgutil.iter_modules(chainrule.ops.__path__):
        importlib.import_module(f"chainrule.ops.{module.name}")
    found: set[type[Function]] = set()
    pending = [Function]
    while pending:
        for sub in pending.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                pending.append(sub)
    return sorted((c for c in found if c.__module__.startswith("chainrule.ops.")),
                  key=lambda c: (c.__module__, c.__name__.lstrip("_").lower()))


# Bases of other operations, never applied themselves.
BASE_CLASSES: dict[type[Function], str] = {
    BinaryElementwise: "elementwise operations of two broadcast inputs (explains shape "
                       "errors)",
    Recurrence: "the fused recurrent layers RNN, LSTM and GRU (the loop through time)",
}


# --------------------------------------------------------------------------- the table
@dataclass
class Sample:
    """One application of an operation: float64 input arrays (each gets a gradient),
    the chainrule function of those inputs, and the same computation in torch, called
    as ``torch_f(torch, *tensors)`` (None where the case names no counterpart)."""

    inputs: tuple[np.ndarray, ...]
    f: Callable[..., Tensor]
    torch_f: Callable[..., Any] | None = None


@dataclass
class Case:
    op: type[Function]
    name: str
    build: Callable[[np.random.Generator], Sample]
    torch: str | None  # the counterpart as the page shows it
    gradcheck: dict[str, float] = field(default_factory=dict)  # eps/atol/rtol if not default

    @property
    def id(self) -> str:
        return f"{self.op.__name__}-{self.name}"


CASES: list[Case] = []


def case(op: type[Function], name: str, torch: str | None = None, **gradcheck: float):
    """Register the decorated builder as a case of ``op``."""
    def register(build: Callable[[np.random.Generator], Sample]):
        CASES.append(Case(op, name, build, torch, gradcheck))
        return build
    return register


def cases_of(op: type[Function]) -> list[Case]:
    return [c for c in CASES if c.op is op]


# --------------------------------------------------------------------------- inputs
def normal(rng, *shape, scale=1.0) -> np.ndarray:
    return rng.standard_normal(shape) * scale


def uniform(rng, low, high, *shape) -> np.ndarray:
    return rng.uniform(low, high, shape)


def away_from_zero(rng, *shape, margin=0.1) -> np.ndarray:
    """Either sign, |x| ≥ margin: no kink at 0 within reach of the nudges."""
    z = rng.standard_normal(shape)
    return np.where(z >= 0, 1.0, -1.0) * (margin + np.abs(z))


def distinct(rng, *shape) -> np.ndarray:
    """Values at least 0.09 apart: every maximum and minimum is unique."""
    size = int(np.prod(shape))
    return (rng.permutation(size) * 0.1 + rng.uniform(0, 0.01)).reshape(shape) - 1.0


def interleaved(rng, shape_a, shape_b) -> tuple[np.ndarray, np.ndarray]:
    """a on even integers, b on odd ones: a - b is never within 0.5 of a tie."""
    a = 2.0 * rng.integers(-3, 3, shape_a) + rng.uniform(0, 0.5, shape_a)
    b = 2.0 * rng.integers(-3, 3, shape_b) + 1.0 + rng.uniform(0, 0.5, shape_b)
    return a, b


# --------------------------------------------------------------------------- arithmetic
BROADCAST = ((3, 1, 5), (4, 1))  # odd shapes that broadcast both ways


def _binary(op, cr, th_name):
    @case(op, "broadcast", torch=f"torch.{th_name}")
    def _(rng):
        b = away_from_zero(rng, *BROADCAST[1], margin=0.5)
        return Sample((normal(rng, *BROADCAST[0]), b), cr,
                      lambda th, x, y: getattr(th, th_name)(x, y))


_binary(Add, F.add, "add")
_binary(Sub, F.sub, "sub")
_binary(Mul, F.mul, "mul")
_binary(Div, F.div, "div")


@case(Neg, "3x5", torch="torch.neg")
def _(rng):
    return Sample((normal(rng, 3, 5),), F.neg, lambda th, x: th.neg(x))


for _c in (2.5, -1.5):
    @case(PowScalar, f"c={_c}", torch="torch.pow (number exponent)")
    def _(rng, c=_c):
        return Sample((uniform(rng, 0.5, 2.0, 3, 5),), lambda x: x ** c, lambda th, x: x ** c)


@case(Pow, "broadcast", torch="torch.pow")
def _(rng):  # a positive base: ln a in d(a^b)/db is defined
    return Sample((uniform(rng, 0.5, 2.0, 2, 3), uniform(rng, -1.5, 1.5, 3)), F.pow,
                  lambda th, a, b: th.pow(a, b))


@case(MatMul, "batch-broadcast", torch="torch.matmul")
def _(rng):
    return Sample((normal(rng, 2, 3, 4), normal(rng, 4, 5)), F.matmul,
                  lambda th, a, b: th.matmul(a, b))


@case(MatMul, "vector-left", torch="torch.matmul")
def _(rng):
    return Sample((normal(rng, 4), normal(rng, 2, 4, 5)), F.matmul,
                  lambda th, a, b: th.matmul(a, b))


@case(AsType, "float32-round-trip", torch="Tensor.to(dtype)", eps=1e-2)
def _(rng):  # the float32 rounding needs large nudges
    return Sample((normal(rng, 3, 5),),
                  lambda x: F.astype(F.astype(x, np.float32) * 3.0, np.float64),
                  lambda th, x: (x.to(th.float32) * 3.0).to(th.float64))


# --------------------------------------------------------------------------- elementwise

UNARY = [  # (class, chainrule function, torch name, inputs)
    (E.Exp, F.exp, "exp", lambda rng: normal(rng, 3, 5)),
    (E.Log, F.log, "log", lambda rng: uniform(rng, 0.2, 3.0, 3, 5)),
    (E.Sqrt, F.sqrt, "sqrt", lambda rng: uniform(rng, 0.2, 3.0, 3, 5)),
    (E.Abs, F.abs, "abs", lambda rng: away_from_zero(rng, 3, 5)),
    (E.Sin, F.sin, "sin", lambda rng: normal(rng, 3, 5)),
    (E.Cos, F.cos, "cos", lambda rng: normal(rng, 3, 5)),
    (E.Tanh, F.tanh, "tanh", lambda rng: normal(rng, 3, 5)),
    (E.Sigmoid, F.sigmoid, "sigmoid", lambda rng: normal(rng, 3, 5, scale=4)),
    (E.ReLU, F.relu, "relu", lambda rng: away_from_zero(rng, 3, 5)),
    (E.Erf, F.erf, "erf", lambda rng: normal(rng, 3, 5, scale=2.5)),
]
for _op, _fn, _name, _inputs in UNARY:
    @case(_op, "3x5", torch=f"torch.{_name}")
    def _(rng, fn=_fn, name=_name, inputs=_inputs):
        return Sample((inputs(rng),), fn, lambda th, x: getattr(th, name)(x))


@case(E.LeakyReLU, "slope=0.2", torch="torch.nn.functional.leaky_relu")
def _(rng):
    return Sample((away_from_zero(rng, 3, 5),), lambda x: F.leaky_relu(x, 0.2),
                  lambda th, x: th.nn.functional.leaky_relu(x, 0.2))


@case(E.Softplus, "3x5", torch="torch.nn.functional.softplus")
def _(rng):
    return Sample((normal(rng, 3, 5, scale=4),), F.softplus,
                  lambda th, x: th.nn.functional.softplus(x))


@case(E.Softplus, "beta-threshold", torch="torch.nn.functional.softplus")
def _(rng):  # β = 2, threshold 3: both branches, kept 0.1 away from the kink at x = 1.5
    x = normal(rng, 3, 5, scale=2)
    x = np.where(np.abs(x - 1.5) < 0.1, x + 0.3, x)
    return Sample((x,), lambda x: F.softplus(x, 2.0, 3.0),
                  lambda th, x: th.nn.functional.softplus(x, 2.0, 3.0))


@case(E.Clip, "both-bounds", torch="torch.clamp")
def _(rng):
    x = uniform(rng, -2, 2, 4, 5)
    x[np.abs(x + 0.5) < 0.05] += 0.1  # away from the bounds, where the slope jumps
    x[np.abs(x - 0.7) < 0.05] += 0.1
    return Sample((x,), lambda x: F.clip(x, -0.5, 0.7), lambda th, x: th.clamp(x, -0.5, 0.7))


@case(E.Maximum, "broadcast", torch="torch.maximum")
def _(rng):
    return Sample(interleaved(rng, *BROADCAST), F.maximum, lambda th, a, b: th.maximum(a, b))


@case(E.Minimum, "broadcast", torch="torch.minimum")
def _(rng):
    return Sample(interleaved(rng, *BROADCAST), F.minimum, lambda th, a, b: th.minimum(a, b))


@case(E.Where, "broadcast", torch="torch.where")
def _(rng):
    cond = rng.random((3, 4, 5)) > 0.5
    return Sample((normal(rng, *BROADCAST[0]), normal(rng, *BROADCAST[1])),
                  lambda a, b: F.where(cond, a, b),
                  lambda th, a, b: th.where(th.as_tensor(cond), a, b))


@case(E.GELU, "3x5", torch="torch.nn.functional.gelu")
def _(rng):
    return Sample((normal(rng, 3, 5, scale=3),), F.gelu, lambda th, x: th.nn.functional.gelu(x))


@case(E.GELUTanh, "3x5", torch="torch.nn.functional.gelu(approximate='tanh')")
def _(rng):
    return Sample((normal(rng, 3, 5, scale=3),), lambda x: F.gelu(x, approximate="tanh"),
                  lambda th, x: th.nn.functional.gelu(x, approximate="tanh"))


# --------------------------------------------------------------------------- reduction


@case(Sum, "axes=(0,2)-keepdims", torch="torch.sum")
def _(rng):
    return Sample((normal(rng, 2, 3, 4),), lambda x: F.sum(x, (0, 2), keepdims=True),
                  lambda th, x: th.sum(x, dim=(0, 2), keepdim=True))


@case(SumTo, "(2,3,4)->(3,1)", torch="Tensor.sum_to_size")
def _(rng):
    return Sample((normal(rng, 2, 3, 4),), lambda x: F.sum_to(x, (3, 1)),
                  lambda th, x: x.sum_to_size(3, 1))


@case(BroadcastTo, "(3,1)->(2,3,4)", torch="torch.broadcast_to")
def _(rng):
    return Sample((normal(rng, 3, 1),), lambda x: F.broadcast_to(x, (2, 3, 4)),
                  lambda th, x: th.broadcast_to(x, (2, 3, 4)))


@case(Extremum, "max-axis=1", torch="torch.amax")
def _(rng):
    return Sample((distinct(rng, 2, 3, 4),), lambda x: F.max(x, 1),
                  lambda th, x: th.amax(x, dim=1))


@case(Extremum, "min-axes=(0,2)-keepdims", torch="torch.amin")
def _(rng):
    return Sample((distinct(rng, 2, 3, 4),), lambda x: F.min(x, (0, 2), keepdims=True),
                  lambda th, x: th.amin(x, dim=(0, 2), keepdim=True))


# --------------------------------------------------------------------------- shape


@case(Reshape, "(2,3,4)->(4,-1)", torch="torch.reshape")
def _(rng):
    return Sample((normal(rng, 2, 3, 4),), lambda x: x.reshape(4, -1),
                  lambda th, x: x.reshape(4, -1))


@case(Transpose, "axes=(1,2,0)", torch="torch.permute")
def _(rng):
    return Sample((normal(rng, 2, 3, 4),), lambda x: x.permute(1, 2, 0),
                  lambda th, x: x.permute(1, 2, 0))


_REPEATS = (np.array([0, 2, 0, 0]), slice(1, None))


@case(GetItem, "repeated-rows-and-slice", torch="Tensor.__getitem__")
def _(rng):
    return Sample((normal(rng, 3, 5),), lambda x: x[_REPEATS],
                  lambda th, x: x[th.as_tensor(_REPEATS[0]), 1:])


@case(GetItem, "boolean-mask", torch="Tensor.__getitem__")
def _(rng):
    mask = rng.random((3, 5)) > 0.5
    return Sample((normal(rng, 3, 5),), lambda x: x[mask], lambda th, x: x[th.as_tensor(mask)])


@case(ScatterAdd, "repeated-rows", torch="Tensor.index_put(accumulate=True)")
def _(rng):
    index = np.array([0, 2, 0, 1])
    return Sample((normal(rng, 4, 5),), lambda g: ScatterAdd(index, (3, 5))(g),
                  lambda th, g: th.zeros(3, 5, dtype=g.dtype).index_put(
                      (th.as_tensor(index),), g, accumulate=True))


@case(Concatenate, "axis=1", torch="torch.cat")
def _(rng):
    return Sample((normal(rng, 2, 1), normal(rng, 2, 3), normal(rng, 2, 2)),
                  lambda *xs: F.concatenate(xs, 1), lambda th, *xs: th.cat(xs, 1))


# --------------------------------------------------------------------------- nn


@case(N.Linear, "3d-input", torch="torch.nn.functional.linear (weight transposed)")
def _(rng):
    return Sample((normal(rng, 2, 5, 3), normal(rng, 3, 4), normal(rng, 4)), F.linear,
                  lambda th, x, w, b: th.nn.functional.linear(x, w.T, b))


@case(N.Embedding, "repeated-indices", torch="torch.nn.functional.embedding")
def _(rng):
    index = np.array([[1, 4, 1], [0, 1, 2]])
    return Sample((normal(rng, 5, 3),), lambda w: F.embedding(index, w),
                  lambda th, w: th.nn.functional.embedding(th.as_tensor(index), w))


@case(N.Softmax, "axis=1", torch="torch.softmax")
def _(rng):
    return Sample((normal(rng, 2, 3, 4),), lambda x: F.softmax(x, 1),
                  lambda th, x: th.softmax(x, 1))


@case(N.LogSoftmax, "axis=-1", torch="torch.log_softmax")
def _(rng):
    return Sample((normal(rng, 2, 3, 4),), lambda x: F.log_softmax(x, -1),
                  lambda th, x: th.log_softmax(x, -1))


@case(N.LogSumExp, "axes=(0,2)", torch="torch.logsumexp")
def _(rng):
    return Sample((normal(rng, 2, 3, 4),), lambda x: F.logsumexp(x, (0, 2)),
                  lambda th, x: th.logsumexp(x, dim=(0, 2)))


@case(N.CrossEntropy, "indices-ignore-index", torch="torch.nn.functional.cross_entropy")
def _(rng):
    target = rng.integers(0, 5, 6)
    target[2] = -100
    return Sample((normal(rng, 6, 5),), lambda x: F.cross_entropy(x, target),
                  lambda th, x: th.nn.functional.cross_entropy(x, th.as_tensor(target)))


@case(N.CrossEntropy, "probabilities-3d", torch="torch.nn.functional.cross_entropy")
def _(rng):  # torch has the classes on axis 1: flatten the (2, 3) samples into rows
    target = rng.dirichlet(np.ones(5), (2, 3))
    return Sample((normal(rng, 2, 3, 5),), lambda x: F.cross_entropy(x, target),
                  lambda th, x: th.nn.functional.cross_entropy(
                      x.reshape(-1, 5), th.as_tensor(target).reshape(-1, 5)))


@case(N.BCEWithLogits, "soft-target",
      torch="torch.nn.functional.binary_cross_entropy_with_logits")
def _(rng):  # the target requires grad too: d/dt = -x
    return Sample((normal(rng, 3, 4, scale=3), uniform(rng, 0, 1, 3, 4)),
                  F.binary_cross_entropy_with_logits,
                  lambda th, x, t: th.nn.functional.binary_cross_entropy_with_logits(x, t))


@case(N.CrossEntropy, "weight-smoothing-ignore", torch="torch.nn.functional.cross_entropy")
def _(rng):
    target = rng.integers(0, 5, 6)
    target[2] = -100
    weight = uniform(rng, 0.5, 2, 5)
    return Sample((normal(rng, 6, 5),),
                  lambda x: F.cross_entropy(x, target, weight=weight, label_smoothing=0.2),
                  lambda th, x: th.nn.functional.cross_entropy(
                      x, th.as_tensor(target), th.as_tensor(weight), label_smoothing=0.2))


@case(N.CrossEntropy, "probabilities-with-grad", torch="torch.nn.functional.cross_entropy")
def _(rng):  # the soft target requires grad too: d/dt = -(1-ε)·w·log p
    weight = uniform(rng, 0.5, 2, 5)
    return Sample((normal(rng, 4, 5), rng.dirichlet(np.ones(5), 4)),
                  lambda x, t: F.cross_entropy(x, t, weight=weight, label_smoothing=0.1),
                  lambda th, x, t: th.nn.functional.cross_entropy(
                      x, t, th.as_tensor(weight), label_smoothing=0.1))


@case(N.NLLLoss, "weight-ignore-index", torch="torch.nn.functional.nll_loss")
def _(rng):
    target = rng.integers(0, 5, 6)
    target[1] = 3
    weight = uniform(rng, 0.5, 2, 5)
    return Sample((normal(rng, 6, 5),),
                  lambda x: F.nll_loss(x, target, ignore_index=3, weight=weight),
                  lambda th, x: th.nn.functional.nll_loss(
                      x, th.as_tensor(target), th.as_tensor(weight), ignore_index=3))


@case(N.BCEWithLogits, "weight-pos-weight",
      torch="torch.nn.functional.binary_cross_entropy_with_logits")
def _(rng):
    weight, pos_weight = uniform(rng, 0.5, 2, 3, 1), uniform(rng, 0.5, 3, 4)
    return Sample((normal(rng, 3, 4, scale=3), uniform(rng, 0, 1, 3, 4)),
                  lambda x, t: F.binary_cross_entropy_with_logits(x, t, "sum", weight,
                                                                  pos_weight),
                  lambda th, x, t: th.nn.functional.binary_cross_entropy_with_logits(
                      x, t, th.as_tensor(weight), reduction="sum",
                      pos_weight=th.as_tensor(pos_weight)))


@case(N.BinaryCrossEntropy, "weight", torch="torch.nn.functional.binary_cross_entropy")
def _(rng):  # probabilities away from 0 and 1; the target requires grad too
    weight = uniform(rng, 0.5, 2, 4)
    return Sample((uniform(rng, 0.05, 0.95, 3, 4), uniform(rng, 0, 1, 3, 4)),
                  lambda p, t: F.binary_cross_entropy(p, t, weight=weight),
                  lambda th, p, t: th.nn.functional.binary_cross_entropy(
                      p, t, th.as_tensor(weight)))


# --------------------------------------------------------------------------- padding
@case(Pad, "constant-crop", torch="torch.nn.functional.pad")
def _(rng):  # the last axis padded on the left and cropped on the right, the one before
    return Sample((normal(rng, 2, 3, 5, 4),), lambda x: F.pad(x, (2, -1, 1, 3), value=0.5),
                  lambda th, x: th.nn.functional.pad(x, (2, -1, 1, 3), value=0.5))


for _mode in ("reflect", "replicate", "circular"):
    @case(PadCopy, _mode, torch="torch.nn.functional.pad")
    def _(rng, mode=_mode):
        return Sample((normal(rng, 2, 3, 5, 4),), lambda x: F.pad(x, (2, -1, 1, 3), mode),
                      lambda th, x: th.nn.functional.pad(x, (2, -1, 1, 3), mode=mode))


@case(PadCopyAdjoint, "reflect", torch="autograd of torch.nn.functional.pad")
def _(rng):
    # reflect padding (1, 0, 2, 3) of (2, 3, 5, 3) images: the source of each output place
    indices = {2: np.array([2, 1, 0, 1, 2, 3, 4, 3, 2, 1]), 3: np.array([1, 0, 1, 2])}

    def torch_f(th, g):
        x = th.zeros((2, 3, 5, 3), dtype=g.dtype, requires_grad=True)
        y = th.nn.functional.pad(x, (1, 0, 2, 3), mode="reflect")
        return th.autograd.grad(y, x, g, create_graph=True)[0]
    return Sample((normal(rng, 2, 3, 10, 4),),
                  lambda g: PadCopyAdjoint(indices, (2, 3, 5, 3))(g), torch_f)


# --------------------------------------------------------------------------- normalization


@case(Normalize, "batch-norm-training", torch="torch.nn.functional.batch_norm")
def _(rng):
    return Sample((normal(rng, 4, 3, 2, 3), normal(rng, 3), normal(rng, 3)),
                  lambda x, w, b: F.batch_norm(x, weight=w, bias=b, training=True),
                  lambda th, x, w, b: th.nn.functional.batch_norm(x, None, None, w, b,
                                                                  training=True))


@case(Normalize, "batch-norm-eval", torch="torch.nn.functional.batch_norm")
def _(rng):
    mean, var = normal(rng, 3), uniform(rng, 0.5, 2.0, 3)
    return Sample((normal(rng, 4, 3, 5), normal(rng, 3), normal(rng, 3)),
                  lambda x, w, b: F.batch_norm(x, mean, var, w, b),
                  lambda th, x, w, b: th.nn.functional.batch_norm(
                      x, th.as_tensor(mean), th.as_tensor(var), w, b))


@case(Normalize, "layer-norm", torch="torch.nn.functional.layer_norm")
def _(rng):
    return Sample((normal(rng, 2, 3, 4), normal(rng, 4), normal(rng, 4)),
                  lambda x, w, b: F.layer_norm(x, 4, w, b),
                  lambda th, x, w, b: th.nn.functional.layer_norm(x, (4,), w, b))


# --------------------------------------------------------------------------- conv
# One geometry for the convolution family: 3×2 kernel, stride (2, 1), padding 1 on
# (2, 3, 7, 6) images gives (4, 7) outputs, and the transposed convolution maps those
# back onto 7×6 exactly (no output_padding needed).
_IMAGES, _KERNEL, _STRIDE, _PADDING = (2, 3, 7, 6), (3, 2), (2, 1), (1, 1)
_WINDOW = Window.make(_KERNEL, _STRIDE, _PADDING)
_OUT = _WINDOW.output_size(_IMAGES, "conv2d")
_TAPS = _KERNEL[0] * _KERNEL[1]


def _unfold(th, x, window=_WINDOW):
    """torch's im2col, (N, C·kh·kw, OH·OW)."""
    return th.nn.functional.unfold(x, window.kernel, window.dilation, window.padding,
                                   window.stride)


def _fold(th, cols, window=_WINDOW, size=_IMAGES[2:]):
    """torch's col2im of (N, C·kh·kw, OH·OW)."""
    return th.nn.functional.fold(cols, size, window.kernel, window.dilation, window.padding,
                                 window.stride)


@case(Conv2d, "stride-padding", torch="torch.nn.functional.conv2d")
def _(rng):
    return Sample((normal(rng, *_IMAGES), normal(rng, 4, 3, *_KERNEL), normal(rng, 4)),
                  lambda x, w, b: F.conv2d(x, w, b, _STRIDE, _PADDING),
                  lambda th, x, w, b: th.nn.functional.conv2d(x, w, b, _STRIDE, _PADDING))


@case(Conv2d, "groups-dilation", torch="torch.nn.functional.conv2d")
def _(rng):
    return Sample((normal(rng, 2, 4, 7, 7), normal(rng, 6, 2, 3, 3)),
                  lambda x, w: F.conv2d(x, w, dilation=2, groups=2),
                  lambda th, x, w: th.nn.functional.conv2d(x, w, dilation=2, groups=2))


@case(Conv2dInputGrad, "stride-padding", torch="torch.nn.functional.conv_transpose2d")
def _(rng):
    return Sample((normal(rng, 2, 4, *_OUT), normal(rng, 4, 3, *_KERNEL)),
                  lambda g, w: Conv2dInputGrad(_WINDOW, 1, _IMAGES)(g, w),
                  lambda th, g, w: th.nn.functional.conv_transpose2d(g, w, None, _STRIDE,
                                                                     _PADDING))


@case(Conv2dWeightGrad, "stride-padding", torch="torch.nn.grad.conv2d_weight")
def _(rng):
    return Sample((normal(rng, *_IMAGES), normal(rng, 2, 4, *_OUT)),
                  lambda x, g: Conv2dWeightGrad(_WINDOW, 1, (4, 3, *_KERNEL))(x, g),
                  lambda th, x, g: th.nn.grad.conv2d_weight(x, (4, 3, *_KERNEL), g, _STRIDE,
                                                            _PADDING))


@case(Im2Col, "stride-padding", torch="torch.nn.functional.unfold (rows transposed)")
def _(rng):
    return Sample((normal(rng, *_IMAGES),), lambda x: F.im2col(x, *_KERNEL, _STRIDE, _PADDING),
                  lambda th, x: _unfold(th, x).transpose(1, 2).reshape(-1, 3 * _TAPS))


@case(Col2Im, "stride-padding", torch="torch.nn.functional.fold (rows transposed)")
def _(rng):
    rows = (_IMAGES[0] * _OUT[0] * _OUT[1], 3 * _TAPS)
    return Sample((normal(rng, *rows),),
                  lambda c: F.col2im(c, _IMAGES, *_KERNEL, _STRIDE, _PADDING),
                  lambda th, c: _fold(th, c.reshape(_IMAGES[0], -1, rows[1]).transpose(1, 2)))


def _winners(rng) -> np.ndarray:
    """A chosen kernel tap for every window of the (2, 3) images."""
    return rng.integers(0, _TAPS, (2, 3, *_OUT)).astype(np.uint8)


def _one_hot_taps(th, winners, like):
    """(N, C, taps, OH, OW): 1 at each window's chosen tap."""
    return th.nn.functional.one_hot(th.as_tensor(winners).long(), _TAPS) \
        .permute(0, 1, 4, 2, 3).to(like.dtype)


@case(PoolSelect, "stride-padding", torch="torch.nn.functional.unfold, then a gather")
def _(rng):
    winners = _winners(rng)

    def torch_f(th, x):
        taps = _unfold(th, x).reshape(2, 3, _TAPS, *_OUT)
        return (taps * _one_hot_taps(th, winners, x)).sum(2)
    return Sample((normal(rng, *_IMAGES),), lambda x: PoolSelect(Pool(_WINDOW), winners)(x),
                  torch_f)


@case(PoolScatter, "stride-padding", torch="torch.nn.functional.fold of the chosen taps")
def _(rng):
    winners = _winners(rng)

    def torch_f(th, g):
        taps = g[:, :, None] * _one_hot_taps(th, winners, g)
        return _fold(th, taps.reshape(2, 3 * _TAPS, -1))
    return Sample((normal(rng, 2, 3, *_OUT),),
                  lambda g: PoolScatter(Pool(_WINDOW), winners, _IMAGES)(g), torch_f)


@case(MaxPool2d, "3x3-stride-2-padding-1", torch="torch.nn.functional.max_pool2d")
def _(rng):
    return Sample((distinct(rng, 2, 3, 6, 7),), lambda x: F.max_pool2d(x, 3, 2, 1),
                  lambda th, x: th.nn.functional.max_pool2d(x, 3, 2, 1))


@case(AvgPool2d, "stride-padding", torch="torch.nn.functional.avg_pool2d")
def _(rng):
    return Sample((normal(rng, *_IMAGES),), lambda x: F.avg_pool2d(x, _KERNEL, _STRIDE, _PADDING),
                  lambda th, x: th.nn.functional.avg_pool2d(x, _KERNEL, _STRIDE, _PADDING))


@case(AvgPoolScatter, "stride-padding", torch="torch.nn.functional.fold of g/(kh·kw)")
def _(rng):
    def torch_f(th, g):
        taps = g[:, :, None].expand(2, 3, _TAPS, *_OUT) / _TAPS
        return _fold(th, taps.reshape(2, 3 * _TAPS, -1))
    return Sample((normal(rng, 2, 3, *_OUT),),
                  lambda g: AvgPoolScatter(Pool(_WINDOW), 1 / _TAPS, _IMAGES)(g), torch_f)


@case(ConvTranspose2d, "stride-output-padding-groups-dilation",
      torch="torch.nn.functional.conv_transpose2d")
def _(rng):
    settings = dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2), groups=2,
                    dilation=(1, 2))
    return Sample((normal(rng, 2, 4, 3, 4), normal(rng, 4, 3, 3, 2), normal(rng, 6)),
                  lambda x, w, b: F.conv_transpose2d(x, w, b, **settings),
                  lambda th, x, w, b: th.nn.functional.conv_transpose2d(x, w, b, **settings))


@case(MaxPool2d, "dilation-ceil-mode", torch="torch.nn.functional.max_pool2d")
def _(rng):
    return Sample((distinct(rng, 2, 3, 7, 8),), lambda x: F.max_pool2d(x, 3, 2, 1, 2, True),
                  lambda th, x: th.nn.functional.max_pool2d(x, 3, 2, 1, 2, True))


@case(AvgPool2d, "ceil-mode-exclude-padding", torch="torch.nn.functional.avg_pool2d")
def _(rng):
    return Sample((normal(rng, 2, 3, 7, 6),), lambda x: F.avg_pool2d(x, 3, 2, 1, True, False),
                  lambda th, x: th.nn.functional.avg_pool2d(x, 3, 2, 1, True, False))


@case(AdaptiveAvgPool2d, "7x9-to-3x4", torch="torch.nn.functional.adaptive_avg_pool2d")
def _(rng):
    return Sample((normal(rng, 2, 3, 7, 9),), lambda x: F.adaptive_avg_pool2d(x, (3, 4)),
                  lambda th, x: th.nn.functional.adaptive_avg_pool2d(x, (3, 4)))


# --------------------------------------------------------------------------- recurrent

_T, _N, _D, _H = 4, 2, 3, 5


def _layer_inputs(rng, gates: int, states: int) -> tuple[np.ndarray, ...]:
    """x (T, N, D), the states (N, H), W_ih (D, G·H), W_hh (H, G·H), b_ih, b_hh (G·H,)."""
    return (normal(rng, _T, _N, _D), *[normal(rng, _N, _H) for _ in range(states)],
            normal(rng, _D, gates * _H, scale=0.5), normal(rng, _H, gates * _H, scale=0.5),
            normal(rng, gates * _H, scale=0.5), normal(rng, gates * _H, scale=0.5))


@case(_Alias, "3x5", torch="Tensor.clone")
def _(rng):
    return Sample((normal(rng, 3, 5),), lambda x: _Alias()(x), lambda th, x: x.clone())


@case(RNN, "tanh", torch="torch.nn.RNN (its equations, step by step)")
def _(rng):
    def torch_f(th, x, h, w_ih, w_hh, b_ih, b_hh):
        out = []
        for x_t in x:
            h = th.tanh(x_t @ w_ih + b_ih + h @ w_hh + b_hh)
            out.append(h)
        return th.stack(out)
    return Sample(_layer_inputs(rng, 1, 1), lambda x, h, *w: F.rnn(x, h, *w)[0], torch_f)


@case(LSTM, "with-bias", torch="torch.nn.LSTM (its equations, step by step)")
def _(rng):
    def torch_f(th, x, h, c, w_ih, w_hh, b_ih, b_hh):
        out = []
        for x_t in x:
            i, f, g, o = (x_t @ w_ih + b_ih + h @ w_hh + b_hh).chunk(4, -1)
            c = th.sigmoid(f) * c + th.sigmoid(i) * th.tanh(g)
            h = th.sigmoid(o) * th.tanh(c)
            out.append(h)
        return th.cat([th.stack(out), c[None]])  # h_1..h_T, then c_T

    def f(x, h, c, *w):
        out, _, c_last = F.lstm(x, h, c, *w)
        return F.concatenate([out, c_last.unsqueeze(0)], 0)
    return Sample(_layer_inputs(rng, 4, 2), f, torch_f)


@case(GRU, "with-bias", torch="torch.nn.GRU (its equations, step by step)")
def _(rng):
    def torch_f(th, x, h, w_ih, w_hh, b_ih, b_hh):
        out = []
        for x_t in x:
            xr, xz, xn = (x_t @ w_ih + b_ih).chunk(3, -1)
            hr, hz, hn = (h @ w_hh + b_hh).chunk(3, -1)
            r, z = th.sigmoid(xr + hr), th.sigmoid(xz + hz)
            n = th.tanh(xn + r * hn)
            h = (1 - z) * n + z * h
            out.append(h)
        return th.stack(out)
    return Sample(_layer_inputs(rng, 3, 1), lambda x, h, *w: F.gru(x, h, *w)[0], torch_f)
