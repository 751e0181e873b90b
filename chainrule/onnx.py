"""Export a model to ONNX: ``chainrule.onnx.export(model, example_input, "model.onnx")``.

The export traces the model: it runs ``model(example_input)`` once in evaluation mode
with the input recording the graph (the same graph ``backward`` walks), then writes one
ONNX node (or two) for every operation in that graph, from the input to the output.
So whatever the model's ``forward`` does (a ``Sequential``, a hand-written forward, the
convnets' reshape of flat input) is exported exactly as it ran, and an operation ONNX
export does not know is reported by name.

Evaluation mode makes dropout the identity (no node at all) and batch normalisation an
affine map with its running statistics (``BatchNormalization`` in inference form).
Weights are stored as initialisers under their parameter names, in chainrule's layout:
a ``Linear`` weight is (in, out), so it is the B of ``Gemm`` as it is (``transB=0``).
The batch axis of the input and output is symbolic (``N``): the file runs on any batch
size.

Supported (opset 13 or later): Linear → Gemm (2-D input) or MatMul + Add, Conv2d →
Conv (uneven or 'same' padding: Pad, then Conv), ConvTranspose2d → ConvTranspose,
constant pad → Pad, MaxPool2d → MaxPool, AvgPool2d → AveragePool (ceil_mode and
count_include_pad too), batch norm → BatchNormalization,
flatten/reshape → Flatten or Reshape, ReLU, LeakyReLU, Sigmoid, Tanh, Exp, Log, Sqrt,
Abs, Neg, Softmax, LogSoftmax, transpose, matmul and the arithmetic operators (+ - * /,
with constants as initialisers).

This module is an optional extra: ``pip install -e ".[onnx]"`` installs onnx (and
onnxruntime, to run the files); nothing else in chainrule imports it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from chainrule._atomic import atomic_writer
from chainrule._extras import import_extra, install_hint
from chainrule.nn.module import Module
from chainrule.ops import (
    arithmetic,
    conv,
    conv_transpose,
    elementwise,
    nn,
    normalization,
    padding,
    pooling,
    shape,
)
from chainrule.tensor import Function, Tensor, enable_grad, topological_order

__all__ = ["export", "OPSET", "UnsupportedOperationError"]

#: The default opset; any from 13 (Softmax over one axis) to onnx's newest works.
OPSET = 13
MIN_OPSET = 13
INSTALL_HINT = install_hint("onnx")


class UnsupportedOperationError(ValueError):
    """The model uses an operation the ONNX export cannot write."""


def _onnx() -> Any:
    """The onnx package, imported only when an export runs."""
    return import_extra("onnx", "onnx", "ONNX export")


class _Graph:
    """The ONNX nodes, initialisers and tensor names of one export, built as the traced
    operations are visited from the input to the output."""

    def __init__(self, onnx: Any, parameters: dict[int, str]) -> None:
        self.onnx, self.helper = onnx, onnx.helper
        self.parameters = parameters  # id(parameter tensor) -> its dotted name
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.names: dict[int, str] = {}  # id(tensor) -> ONNX name
        self.counts: dict[str, int] = {}

    def fresh(self, stem: str) -> str:
        """A new unique name ``stem_k``."""
        k = self.counts.get(stem, 0)
        self.counts[stem] = k + 1
        return f"{stem}_{k}"

    def constant(self, array: np.ndarray, stem: str) -> str:
        """An initialiser holding ``array``; returns its name."""
        name = stem if stem not in {i.name for i in self.initializers} else self.fresh(stem)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def name_of(self, tensor: Tensor) -> str:
        """The ONNX name of an input of an operation: a traced value, a parameter
        (an initialiser under its parameter name) or a constant."""
        name = self.names.get(id(tensor))
        if name is None:
            stem = self.parameters.get(id(tensor), "constant")
            name = self.constant(tensor.data, stem)
            self.names[id(tensor)] = name
        return name

    def node(self, op_type: str, inputs: list[str], output: str | None = None,
             **attributes: Any) -> str:
        """Add a node; returns the name of its (single) output."""
        output = output or self.fresh(op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, inputs, [output],
                                                name=self.fresh(f"{op_type}_node"),
                                                **attributes))
        return output


# --------------------------------------------------------------------------- operations
# One writer per operation: (graph, the Function, its input names) -> the output's name.
Writer = Callable[[_Graph, Function, list[str]], str]


def _linear(g: _Graph, fn: nn.Linear, names: list[str]) -> str:
    if fn.inputs[0].ndim == 2:
        return g.node("Gemm", names)  # y = x·W + b with W (in, out): no transpose
    y = g.node("MatMul", names[:2])
    return g.node("Add", [y, names[2]]) if len(names) == 3 else y


def _window(fn: Any) -> dict[str, list[int]]:
    """The ONNX attributes of a convolution's or pool's window (ONNX pads are
    [top, left, bottom, right]; chainrule's padding is the same on both sides)."""
    w = fn.window
    if len(w.padding) != 2:
        raise UnsupportedOperationError(
            f"ONNX export writes padding that is the same on both sides of each axis; "
            f"{type(fn).__name__} has padding {w.padding}")
    return dict(kernel_shape=list(w.kernel), strides=list(w.stride),
                pads=list(w.padding) * 2, dilations=list(w.dilation))


def _conv(g: _Graph, fn: conv.Conv2d, names: list[str]) -> str:
    return g.node("Conv", names, group=fn.groups, **_window(fn))


def _max_pool(g: _Graph, fn: pooling.MaxPool2d, names: list[str]) -> str:
    return g.node("MaxPool", names, ceil_mode=int(getattr(fn, "ceil_mode", False)),
                  **_window(fn))


def _avg_pool(g: _Graph, fn: pooling.AvgPool2d, names: list[str]) -> str:
    window = _window(fn)
    if window.pop("dilations") != [1, 1]:  # (AveragePool has dilations from opset 19 only)
        raise UnsupportedOperationError("ONNX export writes avg_pool2d without dilation")
    if getattr(fn, "divisor_override", None) is not None:  # (AveragePool has no such divisor)
        raise UnsupportedOperationError("ONNX export writes avg_pool2d without "
                                        "divisor_override")
    # padding counts as zeros in the mean unless the operation says otherwise
    return g.node("AveragePool", names, ceil_mode=int(getattr(fn, "ceil_mode", False)),
                  count_include_pad=int(getattr(fn, "count_include_pad", True)), **window)


def _conv_transpose(g: _Graph, fn: conv_transpose.ConvTranspose2d, names: list[str]) -> str:
    # output_padding: what the output has beyond the smallest size these settings give
    smallest = conv_transpose.conv_transpose_output_size(
        fn.inputs[0].shape[2:], fn.window.kernel, fn.window.stride, fn.window.padding, 0,
        fn.window.dilation)
    extra = [int(n - m) for n, m in zip(fn.output_shape[2:], smallest)]
    return g.node("ConvTranspose", names, group=fn.groups, output_padding=extra,
                  **_window(fn))


def _pad(g: _Graph, fn: padding.Pad, names: list[str]) -> str:
    # ONNX pads: every axis's start, then every axis's end (negative ones crop)
    pads = [a for a, _ in fn.widths] + [b for _, b in fn.widths]
    dtype = fn.inputs[0].dtype
    return g.node("Pad", [names[0], g.constant(np.array(pads, np.int64), "pads"),
                          g.constant(np.array(fn.value, dtype), "pad_value")],
                  mode="constant")


def _normalize(g: _Graph, fn: normalization.Normalize, names: list[str]) -> str:
    x = fn.inputs[0]
    batch_norm_axes = (0,) + tuple(range(2, x.ndim))
    if fn.stats is None or fn.axes != batch_norm_axes:
        kind = "layer norm" if fn.axes != batch_norm_axes else "batch norm in training mode"
        raise UnsupportedOperationError(
            f"ONNX export supports batch normalisation in evaluation mode only, not "
            f"{kind} (Normalize over axes {fn.axes} of a {x.shape} input)")
    channels = x.shape[1]
    mean, inv_std = (a.reshape(channels).astype(np.float64) for a in fn.stats)
    # inv_std = 1/√(var + ε), so var = 1/inv_std² - ε (exact up to float32 rounding)
    var = 1.0 / (inv_std * inv_std) - fn.eps
    dtype = x.dtype
    stem = g.parameters.get(id(fn.inputs[1]), "batch_norm").rsplit(".", 1)[0] \
        if fn.has_weight else g.fresh("batch_norm")
    ones, zeros = np.ones(channels, dtype), np.zeros(channels, dtype)
    scale = names[1] if fn.has_weight else g.constant(ones, f"{stem}.weight")
    shift = names[-1] if fn.has_bias else g.constant(zeros, f"{stem}.bias")
    return g.node("BatchNormalization",
                  [names[0], scale, shift, g.constant(mean.astype(dtype), f"{stem}.running_mean"),
                   g.constant(var.astype(dtype), f"{stem}.running_var")], epsilon=fn.eps)


def _reshape(g: _Graph, fn: shape.Reshape, names: list[str]) -> str:
    before, after = fn.input_shape, fn.output.shape
    if len(before) > 2 and len(after) == 2 and after[0] == before[0]:
        return g.node("Flatten", names, axis=1)  # (N, C, H, W) -> (N, C·H·W)
    target = list(after)
    if before and after and before[0] == after[0]:
        target[0] = 0  # copy the batch size from the input: any batch size works
    return g.node("Reshape", [names[0], g.constant(np.array(target, np.int64), "shape")])


def _plain(op_type: str) -> Writer:
    return lambda g, fn, names: g.node(op_type, names)


WRITERS: dict[type[Function], Writer] = {
    nn.Linear: _linear,
    conv.Conv2d: _conv,
    conv_transpose.ConvTranspose2d: _conv_transpose,
    padding.Pad: _pad,
    pooling.MaxPool2d: _max_pool,
    pooling.AvgPool2d: _avg_pool,
    normalization.Normalize: _normalize,
    shape.Reshape: _reshape,
    shape.Transpose: lambda g, fn, names: g.node("Transpose", names, perm=list(fn.axes)),
    elementwise.ReLU: _plain("Relu"),
    elementwise.LeakyReLU: lambda g, fn, names: g.node("LeakyRelu", names, alpha=fn.slope),
    elementwise.Sigmoid: _plain("Sigmoid"),
    elementwise.Tanh: _plain("Tanh"),
    elementwise.Exp: _plain("Exp"),
    elementwise.Log: _plain("Log"),
    elementwise.Sqrt: _plain("Sqrt"),
    elementwise.Abs: _plain("Abs"),
    nn.Softmax: lambda g, fn, names: g.node("Softmax", names, axis=fn.axis),
    nn.LogSoftmax: lambda g, fn, names: g.node("LogSoftmax", names, axis=fn.axis),
    arithmetic.Add: _plain("Add"),
    arithmetic.Sub: _plain("Sub"),
    arithmetic.Mul: _plain("Mul"),
    arithmetic.Div: _plain("Div"),
    arithmetic.Neg: _plain("Neg"),
    arithmetic.MatMul: _plain("MatMul"),
}


def supported_operations() -> list[str]:
    """The names of the chainrule operations the export can write."""
    return sorted(op.__name__ for op in WRITERS)


# --------------------------------------------------------------------------- export
def _trace(model: Module, example_input: Any) -> tuple[Tensor, Tensor]:
    """Run ``model`` once in evaluation mode on a recording copy of the input; returns
    (input, output). The model's training flags are restored afterwards."""
    params = list(model.parameters())
    dtype = params[0].dtype if params else np.float32
    data = example_input.data if isinstance(example_input, Tensor) else \
        np.asarray(example_input)
    if data.dtype.kind not in "fiub" or data.ndim == 0:
        raise ValueError(f"example_input must be a batch of numbers with the batch on "
                         f"axis 0, got {data.ndim}-d data of dtype {data.dtype}")
    x = Tensor(np.array(data, dtype=dtype), requires_grad=True, name="input")
    modes = [(m, m.training) for m in model.modules()]
    for module, _ in modes:
        object.__setattr__(module, "training", False)  # (model.eval(), undone below)
    try:
        with enable_grad():
            out = model(x)
    finally:
        for module, training in modes:
            object.__setattr__(module, "training", training)
    if not isinstance(out, Tensor) or out.ndim == 0:
        raise TypeError(f"ONNX export needs a model that returns one batch, a Tensor "
                        f"with the batch on axis 0, got {type(out).__name__}")
    return x, out


def export(model: Any, example_input: Any, path: str | os.PathLike, *,
           softmax: bool = False, opset: int = OPSET) -> Path:
    """Write ``model`` as an ONNX file at ``path`` (atomically) and return the path.

    ``example_input`` is one batch of input (an array or a Tensor, e.g. ``x[:1]``); its
    shape fixes every axis but the batch axis. ``softmax=True`` appends a Softmax over
    the last axis, so that a model returning logits exports as one returning
    probabilities. ``opset`` is the ONNX operator set, 13 or later. The graph's input is
    named ``input`` and its output ``output``. Raises ``UnsupportedOperationError``
    naming the operation if the model uses one the export cannot write.
    """
    if not isinstance(model, Module):
        raise TypeError(f"export needs a chainrule.nn.Module, got {type(model).__name__}")
    onnx = _onnx()
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or \
            not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be an int from {MIN_OPSET} to {newest} (the newest "
                         f"this onnx knows), got {opset!r}")
    x, out = _trace(model, example_input)
    parameters = {id(p): name for name, p in model.named_parameters()}
    graph = _Graph(onnx, parameters)
    graph.names[id(x)] = "input"

    def inputs_of(t: Tensor) -> tuple[Tensor, ...]:
        return t.creator.inputs if t.creator is not None and t.creator.inputs else ()

    order = topological_order(out, inputs_of)
    if not any(t is x for t in order):
        raise ValueError("the model's output does not depend on its input: nothing to export")
    for t in order:
        fn = t.creator
        if fn is None or t is x:
            continue  # the input, parameters and constants: named when first used
        writer = WRITERS.get(type(fn))
        if writer is None:
            raise UnsupportedOperationError(
                f"ONNX export does not support the operation {type(fn).__name__} "
                f"({type(fn).__module__}); supported: {', '.join(supported_operations())}")
        graph.names[id(t)] = writer(graph, fn, [graph.name_of(i) for i in fn.inputs])
    result = graph.names[id(out)]
    if softmax:
        result = graph.node("Softmax", [result], axis=-1)
    graph.node("Identity", [result], "output")

    helper = onnx.helper
    element = helper.np_dtype_to_tensor_dtype(out.dtype)
    model_proto = helper.make_model(
        helper.make_graph(
            graph.nodes, type(model).__name__,
            [helper.make_tensor_value_info("input", helper.np_dtype_to_tensor_dtype(x.dtype),
                                           ["N", *x.shape[1:]])],
            [helper.make_tensor_value_info("output", element, ["N", *out.shape[1:]])],
            graph.initializers),
        opset_imports=[helper.make_opsetid("", opset)], producer_name="chainrule")
    # the oldest IR version that has this opset: the file opens in older runtimes too
    model_proto.ir_version = helper.find_min_ir_version_for(list(model_proto.opset_import))
    onnx.checker.check_model(model_proto)
    path = Path(path)
    with atomic_writer(path) as handle:
        handle.write(model_proto.SerializeToString())
    return path
