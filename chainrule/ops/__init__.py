"""All primitive operations, and the operators and methods of ``Tensor`` built on them.

Each operation is a ``Function`` subclass (forward on arrays, backward on tensors) plus a
plain function that checks its arguments and applies it. ``chainrule.functional``
re-exports the functions; this module also attaches them to ``Tensor`` as operators
(``a * b``) and methods (``x.sum()``).
"""

from __future__ import annotations

from typing import Any

from chainrule.ops.arithmetic import add, astype, div, matmul, mul, neg, pow, sub
from chainrule.ops.conv import col2im, conv2d, im2col
from chainrule.ops.conv_transpose import conv_transpose2d
from chainrule.ops.elementwise import (
    abs,
    clip,
    cos,
    eq,
    erf,
    exp,
    ge,
    gelu,
    gt,
    le,
    leaky_relu,
    log,
    lt,
    maximum,
    minimum,
    ne,
    relu,
    sigmoid,
    sin,
    softplus,
    sqrt,
    tanh,
    where,
)
from chainrule.ops.nn import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    dropout,
    embedding,
    linear,
    log_softmax,
    logsumexp,
    mse_loss,
    nll_loss,
    softmax,
)
from chainrule.ops.normalization import batch_norm, layer_norm
from chainrule.ops.padding import pad
from chainrule.ops.pooling import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from chainrule.ops.recurrent import gru, gru_cell, lstm, lstm_cell, rnn, rnn_cell
from chainrule.ops.reduction import broadcast_to, max, mean, min, sum, sum_to, var
from chainrule.ops.shape import (
    Transpose,
    cat,
    concatenate,
    expand,
    flatten,
    getitem,
    permute,
    reshape,
    split,
    squeeze,
    stack,
    swapaxes,
    transpose,
    unsqueeze,
)
from chainrule.tensor import Tensor

__all__ = [
    "abs", "add", "astype", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "broadcast_to", "cat", "clip", "concatenate", "cos", "cross_entropy", "div", "dropout",
    "embedding", "eq", "erf", "exp", "expand", "flatten", "ge", "gelu", "getitem", "gt", "le",
    "leaky_relu", "linear",
    "log", "log_softmax", "logsumexp", "lt", "matmul", "max", "maximum", "mean", "min",
    "minimum", "mse_loss", "mul", "ne", "neg", "permute", "pow", "relu", "reshape",
    "sigmoid", "sin", "softmax", "softplus", "split", "sqrt", "squeeze", "stack", "sub",
    "sum", "sum_to", "swapaxes", "tanh", "transpose", "unsqueeze", "var", "where",
]
__all__ += ["batch_norm", "layer_norm"]
__all__ += ["pad"]
__all__ += ["conv_transpose2d"]
__all__ += ["adaptive_avg_pool2d"]
__all__ += ["nll_loss"]
__all__ += ["avg_pool2d", "col2im", "conv2d", "im2col", "max_pool2d"]
__all__ += ["gru", "gru_cell", "lstm", "lstm_cell", "rnn", "rnn_cell"]


def _reflected(op: Any) -> Any:
    return lambda self, other: op(other, self)


def _matrix_transpose(x: Tensor) -> Tensor:
    if x.ndim < 2:
        raise ValueError(f"mT needs at least 2 dimensions, got shape {x.shape}")
    axes = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return Transpose(axes)(x)


def _attach_tensor_methods() -> None:
    """Give ``Tensor`` its operators and the common functions as methods."""
    operators = {
        "__add__": add, "__radd__": _reflected(add),
        "__sub__": sub, "__rsub__": _reflected(sub),
        "__mul__": mul, "__rmul__": _reflected(mul),
        "__truediv__": div, "__rtruediv__": _reflected(div),
        "__pow__": pow, "__rpow__": _reflected(pow),
        "__matmul__": matmul, "__rmatmul__": _reflected(matmul),
        "__neg__": neg, "__getitem__": getitem,
        "__eq__": eq, "__ne__": ne, "__lt__": lt, "__le__": le, "__gt__": gt, "__ge__": ge,
    }
    methods = {
        "exp": exp, "log": log, "sqrt": sqrt, "abs": abs, "sin": sin, "cos": cos, "erf": erf,
        "tanh": tanh, "sigmoid": sigmoid, "relu": relu, "leaky_relu": leaky_relu,
        "softplus": softplus, "clip": clip, "clamp": clip, "maximum": maximum,
        "minimum": minimum, "sum": sum, "mean": mean, "max": max, "min": min, "var": var,
        "reshape": reshape, "transpose": transpose, "permute": permute,
        "swapaxes": swapaxes, "flatten": flatten, "squeeze": squeeze,
        "unsqueeze": unsqueeze, "broadcast_to": broadcast_to, "expand": expand,
        "sum_to": sum_to, "matmul": matmul, "softmax": softmax,
        "log_softmax": log_softmax, "logsumexp": logsumexp, "pow": pow,
    }
    for name, fn in {**operators, **methods}.items():
        setattr(Tensor, name, fn)
    Tensor.T = property(lambda self: transpose(self))  # all axes reversed, as in NumPy
    Tensor.mT = property(_matrix_transpose)  # the last two axes swapped


_attach_tensor_methods()
