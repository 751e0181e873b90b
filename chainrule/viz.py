"""Pictures of computational graphs, in Graphviz's DOT language.

``to_dot(x)`` needs nothing but chainrule: it returns DOT text with one node per tensor
(name, operation, shape and dtype, value, and gradient when there is one) and one edge
per use. Give it a ``Trace`` (``explain(loss)``) instead of a tensor to see both passes
at once: forward values in the nodes, the gradient sent backward along each edge in red.

``render(x, "graph.svg")`` draws the picture with Graphviz's ``dot`` program when it is
installed, and otherwise writes the ``.dot`` file and says how to install Graphviz.
``graph(x)`` returns a ``Graph`` that shows itself in Jupyter, and
``model_graph(model, example_input)`` draws a network with one box per layer.
"""

from __future__ import annotations

import html
import shutil
import subprocess
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.explain import (
    SMALL,
    Node,
    Trace,
    _creator_inputs,
    format_value,
    snapshot,
)
from chainrule.tensor import Tensor, enable_grad

__all__ = [
    "Graph",
    "GraphvizMissingWarning",
    "GraphvizNotFoundError",
    "INSTALL_HINT",
    "dot_available",
    "graph",
    "model_graph",
    "render",
    "to_dot",
]

INSTALL_HINT = ("install Graphviz: `sudo apt install graphviz` (Debian/Ubuntu), "
                "`brew install graphviz` (macOS) or `conda install graphviz` (conda), or "
                "paste the DOT text into an online viewer")

_IMAGE_FORMATS = ("svg", "png", "pdf")


class GraphvizNotFoundError(RuntimeError):
    """An image was required (``strict=True``) but Graphviz's ``dot`` is not installed."""


class GraphvizMissingWarning(UserWarning):
    """``dot`` is not installed, so the DOT text was written instead of an image."""


def dot_available() -> bool:
    """True when Graphviz's ``dot`` program is on the PATH."""
    return shutil.which("dot") is not None


def missing_dot_message(wanted: Path | str, written: Path | str) -> str:
    """What to tell the user when ``wanted`` could not be drawn and ``written`` (DOT)
    was saved instead."""
    return (f"Graphviz's `dot` program was not found, so {wanted} could not be drawn; "
            f"the graph was written as DOT text to {written}. To get the picture, "
            f"{INSTALL_HINT}.")


# --------------------------------------------------------------------------- DOT text
_STYLE = {  # how each kind of node looks
    "leaf": 'shape=box, style="rounded,filled", fillcolor="#dbeafe"',
    "constant": 'shape=box, style="rounded,dashed", color="#777777", fontcolor="#555555"',
    "op": 'shape=box, style=filled, fillcolor="#fef9c3"',
    "module": 'shape=box3d, style=filled, fillcolor="#dcfce7"',
}


#: Space between a node's label and its border, in inches (horizontal, vertical).
NODE_MARGIN = "0.22,0.11"


def _quote(text: str) -> str:
    """A DOT string: quotes and backslashes escaped, lines separated by ``\\n``."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n") + '"'


def _shape_text(node: Node) -> str:
    return f"{'scalar' if not node.shape else node.shape} {node.dtype}"


def _node_lines(node: Node, values: bool, grads: bool, max_elements: int,
                note: str = "") -> list[str]:
    if node.kind == "module":
        lines = [node.label, node.op or "", _shape_text(node)]
        lines += [node.expression] if node.expression else []
    else:
        kind = node.op or ("leaf" if node.kind == "leaf" else "constant")
        shape = _shape_text(node)
        lines = [node.label, shape if kind == node.label else f"{kind} · {shape}"]
    if values:
        lines.append(f"value {format_value(node.value, max_elements)}")
    if grads and node.grad is not None:
        lines.append(f"grad {format_value(node.grad, max_elements)}{note}")
    return lines


EdgeLabel = Callable[[Node, Node, int], "tuple[str, str] | None"]


def _dot(nodes: list[Node], output: int, title: str, values: bool, grads: bool,
         max_elements: int, edge_label: EdgeLabel | None = None,
         grad_notes: Mapping[int, str] | None = None) -> str:
    """The one DOT writer behind ``to_dot`` and ``model_graph``. ``edge_label(source,
    target, position)`` may return (text, colour) for an edge; ``grad_notes`` adds a
    remark to a node's gradient line."""
    lines = ["digraph chainrule {",
             "  rankdir=LR;",
             '  graph [fontname="Helvetica", fontsize=12, labelloc=t, ordering=in, '
             f"label={_quote(title)}];",
             # Boxes grow to fit their labels (no fixedsize). The margin is twice
             # Graphviz's default (0.11, 0.055 in): a viewer whose font is wider than
             # the one dot measured with, or a rounded corner, then still fits the text.
             f'  node [fontname="Helvetica", fontsize=11, margin="{NODE_MARGIN}"];',
             '  edge [fontname="Helvetica", fontsize=10];']
    for node in nodes:
        style = _STYLE[node.kind]
        if node.index == output:
            style += ", penwidth=2.5"
        note = (grad_notes or {}).get(node.index, "")
        text = "\n".join(_node_lines(node, values, grads, max_elements, note))
        lines.append(f"  n{node.index} [label={_quote(text)}, {style}];")
    for node in nodes:
        for position, source in enumerate(node.inputs):
            attrs = ""
            label = None if edge_label is None else edge_label(nodes[source], node, position)
            if label is not None:
                attrs = f" [label={_quote(label[0])}, fontcolor={_quote(label[1])}]"
            lines.append(f"  n{source} -> n{node.index}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_dot(output: Tensor | Trace | Graph, values: bool = True, grads: bool = True,
           names: Mapping[str, Tensor] | None = None, max_elements: int = SMALL) -> str:
    """The graph behind ``output`` as DOT text (no dependency needed).

    ``output`` is a Tensor (drawn as it is now: gradients are the ``.grad`` present,
    so leaves show them after ``backward(retain_graph=True)``), a ``Trace`` from
    ``explain`` (every node's gradient, and each gradient sent backward along each
    edge in red), or a ``Graph`` (its source). ``names`` labels unnamed tensors
    (``dict(model.named_parameters())``). Tensors with more than ``max_elements``
    elements are summarised as shape and norm.
    """
    if isinstance(output, Graph):
        return output.source
    if isinstance(output, Trace):
        trace = output
        out = trace.nodes[trace.output]
        sends = {(s.node.index, send.position): send for s in trace.steps for send in s.sends}

        def gradient(source: Node, target: Node, position: int) -> tuple[str, str] | None:
            send = sends.get((target.index, position))
            if send is None or not grads:
                return None
            text = "← " + format_value(send.grad, max_elements)
            if send.summed_from is not None:  # where broadcasting was summed away
                text += f"\nΣ {send.summed_from} → {source.shape}"
            return text, "#c0392b"

        # where the gradients of several uses were added
        added = {s.node.index: f" (sum of {len(s.uses)} paths)"
                 for s in trace.steps if s.paths_added}

        title = (f"{out.label} = {format_value(out.value, max_elements)}: forward values "
                 f"in the boxes, gradients d {out.label}/d node in red")
        return _dot(trace.nodes, trace.output, title, values, grads, max_elements, gradient,
                    added)
    if not isinstance(output, Tensor):
        raise TypeError(f"to_dot() draws a Tensor, a Trace (from explain()) or a Graph, "
                        f"got {type(output).__name__}")
    nodes, index = snapshot(output, names)
    out = nodes[index[id(output)]]
    title = f"{out.label} = {format_value(out.value, max_elements)}"
    return _dot(nodes, out.index, title, values, grads, max_elements)


# --------------------------------------------------------------------------- drawing
def _run_dot(source: str, fmt: str, path: Path | None = None) -> bytes:
    """Run Graphviz's ``dot`` on ``source``: the image bytes, or written to ``path``."""
    program = shutil.which("dot")
    if program is None:
        raise GraphvizNotFoundError(f"Graphviz's `dot` program was not found; {INSTALL_HINT}")
    command = [program, f"-T{fmt}"] + ([] if path is None else ["-o", str(path)])
    done = subprocess.run(command, input=source.encode("utf-8"), capture_output=True,
                          timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"Graphviz's dot failed (exit status {done.returncode}): "
                           f"{done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def render(output: Tensor | Trace | Graph, path: str | Path = "graph.svg",
           values: bool = True, grads: bool = True,
           names: Mapping[str, Tensor] | None = None, strict: bool = False) -> Path:
    """Draw the graph of ``output`` (see ``to_dot``) into ``path`` and return the path
    written.

    The format follows the suffix: ``.svg``, ``.png`` or ``.pdf`` (drawn by Graphviz's
    ``dot``), or ``.dot``/``.gv`` (the DOT text). Without Graphviz the DOT text is
    written next to it (``graph.dot``) with a ``GraphvizMissingWarning`` saying how to
    install it; with ``strict=True`` a ``GraphvizNotFoundError`` is raised instead.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in (*_IMAGE_FORMATS, "dot", "gv"):
        raise ValueError(f"render() writes .svg, .png, .pdf, .dot or .gv files; cannot "
                         f"tell the format of {str(path)!r} from its suffix")
    source = to_dot(output, values=values, grads=grads, names=names)
    if fmt in ("dot", "gv"):
        path.write_text(source, encoding="utf-8")
        return path
    if not dot_available():
        if strict:
            raise GraphvizNotFoundError(f"cannot draw {path}: Graphviz's `dot` program was "
                                        f"not found; {INSTALL_HINT}")
        written = path.with_suffix(".dot")
        written.write_text(source, encoding="utf-8")
        warnings.warn(missing_dot_message(path, written), GraphvizMissingWarning,
                      stacklevel=2)
        return written
    _run_dot(source, fmt, path)
    return path


class Graph:
    """A graph picture: ``.source`` is the DOT text. In Jupyter it shows itself (as SVG
    when Graphviz is installed, otherwise as its DOT text); ``render(path)`` draws it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._svg: str | None = None

    def svg(self) -> str:
        """The picture as SVG text (needs Graphviz's ``dot``)."""
        if self._svg is None:
            self._svg = _run_dot(self.source, "svg").decode("utf-8")
        return self._svg

    def render(self, path: str | Path = "graph.svg", strict: bool = False) -> Path:
        """Draw into ``path`` (see ``chainrule.viz.render``)."""
        return render(self, path, strict=strict)

    def _repr_svg_(self) -> str | None:
        return self.svg() if dot_available() else None

    def _repr_html_(self) -> str:
        # Jupyter prefers HTML to SVG, so the HTML carries the SVG when it can be drawn
        if dot_available():
            return self.svg()
        return (f"<p>Graphviz's <code>dot</code> is not installed; "
                f"{html.escape(INSTALL_HINT)}. The graph in DOT:</p>"
                f"<pre>{html.escape(self.source)}</pre>")

    def __str__(self) -> str:
        return self.source

    def __repr__(self) -> str:
        return "<Graph: .source is the DOT text, .render(path) draws it>"


def graph(output: Tensor | Trace, values: bool = True, grads: bool = True,
          names: Mapping[str, Tensor] | None = None) -> Graph:
    """A ``Graph`` of ``output`` (see ``to_dot``), which Jupyter displays as a picture."""
    return Graph(to_dot(output, values=values, grads=grads, names=names))


# --------------------------------------------------------------------------- models
def _describe(module: Any) -> str:
    """``Linear 784→50`` for layers that know their sizes, else the class name."""
    kind = type(module).__name__
    sizes = getattr(module, "in_features", None), getattr(module, "out_features", None)
    if None not in sizes:
        return f"{kind} {sizes[0]}→{sizes[1]}"
    extra = module.extra_repr() if hasattr(module, "extra_repr") else ""
    return f"{kind}({extra})" if extra and len(extra) <= 30 else kind


def _model_input(model: Any, example_input: Any) -> Tensor:
    """The example input as a tensor that records the graph (requires grad), in the
    dtype of the model's parameters."""
    if isinstance(example_input, Tensor):
        if example_input.dtype.kind != "f" or example_input.requires_grad:
            return example_input
        return Tensor._wrap(example_input.data).requires_grad_()
    first = next(iter(model.parameters()), None)
    array = np.asarray(example_input)
    if array.dtype.kind in "biuf":
        array = array.astype(np.float32 if first is None else first.dtype)
    return Tensor(array, requires_grad=array.dtype.kind == "f")


def _layers(module: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """The modules drawn as boxes: the direct children, with containers (Sequential,
    ModuleList) replaced by what they hold (``layers.0``, ``layers.1``, ...)."""
    from chainrule.nn.container import ModuleList, Sequential

    found = []
    for name, child in module.named_children():
        full = f"{prefix}.{name}" if prefix else name
        if isinstance(child, (Sequential, ModuleList)):
            found += _layers(child, full)
        else:
            found.append((full, child))
    return found


def model_graph(model: Any, example_input: Any, values: bool = False) -> Graph:
    """A picture of ``model`` with one box per layer: each direct submodule
    (``model.named_children()``; the contents of a Sequential or ModuleList) is
    collapsed into one node (``fc1: Linear 784→50``), so a 784-50-10 network is a
    handful of boxes. Operations the model's ``forward``
    applies itself (``x.relu()``) appear as their own nodes; edges are labelled with
    the shape that flows along them.

    The model is run once on ``example_input`` (for example one sample,
    ``x[:1]``). Each child's calls are noticed by wrapping its ``forward`` for the
    duration of that run (a model without children is drawn as one box).
    """
    children = _layers(model) or [(type(model).__name__, model)]
    calls: dict[int, tuple[str, Any, list[Tensor]]] = {}  # id(output) -> call
    outputs: list[Tensor] = []  # kept alive, so that no id is reused during the run

    def recording(name: str, module: Any, forward: Callable[..., Any]) -> Callable[..., Any]:
        def forward_and_record(*args: Any, **kwargs: Any) -> Any:
            out = forward(*args, **kwargs)
            inputs = [a for a in (*args, *kwargs.values()) if isinstance(a, Tensor)]
            # an Identity hands its input back: nothing to draw (and no self-loop)
            if isinstance(out, Tensor) and not any(out is a for a in inputs):
                count = sum(1 for c in calls.values() if c[1] is module)
                call_name = name if count == 0 else f"{name} (call {count + 1})"
                calls[id(out)] = (call_name, module, inputs)
                outputs.append(out)
            return out
        return forward_and_record

    x = _model_input(model, example_input)
    for name, child in children:  # an instance attribute shadows the class's forward
        child.__dict__["forward"] = recording(name, child, child.forward)
    try:
        with enable_grad():
            result = model(x)
    finally:
        for _, child in children:
            child.__dict__.pop("forward", None)
    if not isinstance(result, Tensor):
        raise TypeError(f"model_graph() needs a model whose forward returns a Tensor, "
                        f"{type(model).__name__} returned {type(result).__name__}")

    def inputs_of(t: Tensor) -> list[Tensor] | tuple[Tensor, ...]:
        call = calls.get(id(t))
        return call[2] if call is not None else _creator_inputs(t)

    names: dict[str, Tensor] = dict(model.named_parameters())
    names.update({call[0]: out for out in outputs for call in [calls[id(out)]]})
    names.setdefault("input", x)
    nodes, index = snapshot(result, names, inputs_of)
    for out in outputs:
        if id(out) in index:
            node = nodes[index[id(out)]]
            _, module, _ = calls[id(out)]
            count = module.num_parameters() if hasattr(module, "num_parameters") else 0
            node.kind, node.op, node.rule = "module", _describe(module), ""
            node.expression = f"{count:,} parameters" if count else ""
    nodes[index[id(x)]].op = "input"
    for node in nodes:
        node.grad = None  # a structural picture: no gradients

    def shape(source: Node, target: Node, position: int) -> tuple[str, str]:
        return str(source.shape), "#555555"

    total = model.num_parameters() if hasattr(model, "num_parameters") else None
    title = type(model).__name__ + (f" ({total:,} parameters)" if total else "")
    return Graph(_dot(nodes, index[id(result)], title, values, False, SMALL, shape))
