"""See the chain rule at work: a step-by-step record of the forward and backward pass.

``explain(output)`` runs the real backward pass (exactly what ``output.backward()``
does, ``.grad`` of the leaves included) with a tracer attached, and returns a
``Trace``: for every node, in the order the engine processes it, the gradient it
received (and from which uses, when a value fed several operations), the local
derivative rule of the operation that made it, and the gradient it sent to each input.
It prints as a table, and renders as Markdown (``to_markdown()``) or plain data
(``to_dict()``)::

    price = Tensor(100.0, requires_grad=True, name="apple_price")
    total = price * 2.0
    print(explain(total))          # or: print(total.backward(trace=True))

Results of operations get automatic names such as ``mul_3`` (the operation's name and a
per-process counter). They are worked out lazily by ``label()`` only when something is
traced or drawn, so ordinary training never pays for them.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.tensor import Tensor, no_grad, run_backward, topological_order

__all__ = [
    "Node",
    "Send",
    "Step",
    "Trace",
    "Use",
    "explain",
    "format_value",
    "label",
    "reset_labels",
    "shopping_example",
    "snapshot",
]

# Tensors with at most this many elements are shown in full; larger ones as shape + norm.
SMALL = 8


# --------------------------------------------------------------------------- names
# id(tensor) -> (weak reference to it, its label). The weak reference tells a live
# tensor from a new one that happens to reuse a dead tensor's id; its callback drops
# the entry, so the map never keeps a tensor alive or grows with dead ones.
_labels: dict[int, tuple[weakref.ref, str]] = {}
_counters: dict[str, int] = {}  # per-process counter per operation: mul -> 3


def _forget_label(key: int, ref: weakref.ref) -> None:
    entry = _labels.get(key)
    if entry is not None and entry[0] is ref:
        del _labels[key]


def label(tensor: Tensor, names: Mapping[int, str] | None = None) -> str:
    """The name shown for ``tensor`` in traces and graph pictures.

    A name from ``names`` (``id(tensor) -> name``: the full ``fc1.weight`` from
    ``model.named_parameters()`` beats the parameter's own short ``weight``); else its
    ``name`` (``Tensor(..., name="apple")``); else an automatic name given the first
    time it is asked for and kept while the tensor lives: the operation and a counter
    (``mul_3``), ``leaf_1`` for an unnamed leaf that requires grad, or the value itself
    for an unnamed one-element constant (``2``).
    """
    if names is not None and id(tensor) in names:
        return names[id(tensor)]
    if tensor.name:
        return tensor.name
    entry = _labels.get(id(tensor))
    if entry is not None and entry[0]() is tensor:
        return entry[1]
    if tensor.creator is not None:
        kind = tensor.creator.name
    elif tensor.requires_grad:
        kind = "leaf"
    elif tensor.size == 1:
        return format_value(tensor.data)  # a constant such as the 2 in 2 * x
    else:
        kind = "const"
    _counters[kind] = number = _counters.get(kind, 0) + 1
    text = f"{kind}_{number}"
    key = id(tensor)
    ref = weakref.ref(tensor, lambda r, key=key: _forget_label(key, r))
    _labels[key] = (ref, text)
    return text


def reset_labels() -> None:
    """Forget the automatic names and restart the counters (``mul_1`` again)."""
    _labels.clear()
    _counters.clear()


def _names_by_id(names: Mapping[str, Tensor] | None) -> dict[int, str] | None:
    """``{"fc1.weight": tensor}`` (as from ``dict(model.named_parameters())``) by id."""
    if names is None:
        return None
    return {id(t): name for name, t in names.items()}


# --------------------------------------------------------------------------- values
def format_value(array: np.ndarray | Tensor, max_elements: int = SMALL) -> str:
    """A value for people: ``715`` for a scalar (6 significant digits), ``[3, 3.142]``
    for a small array (4 digits), and ``(784, 50) ‖·‖=12.3`` (shape and norm) when it
    has more than ``max_elements``."""
    a = array.data if isinstance(array, Tensor) else np.asarray(array)
    if a.ndim == 0:
        return _number(a.item())
    if a.size <= max_elements:  # on one line, so that it fits a table cell
        return np.array2string(a, separator=", ", max_line_width=10**6,
                               formatter={"all": lambda v: _number(v, digits=4)}
                               ).replace("\n", "")
    with np.errstate(over="ignore", invalid="ignore"):  # inf/nan values give an inf/nan norm
        norm = float(np.linalg.norm(a.astype(np.float64).ravel()))
    return f"{tuple(a.shape)} ‖·‖={norm:.4g}"


def _number(v: Any, digits: int = 6) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return f"{float(v):.{digits}g}"  # float32 rounding noise (1.1000000238) stays hidden


def _plain(a: np.ndarray | None) -> Any:
    """An array as JSON-friendly Python data (a number for a 0-d array)."""
    return None if a is None else a.tolist()


# --------------------------------------------------------------------------- the graph
@dataclass
class Node:
    """One tensor of the graph, as it was in the forward pass.

    ``inputs`` are the indices (in ``Trace.nodes``) of the tensors the operation read,
    in argument order (a tensor used twice appears twice). ``grad`` is d output/d node:
    from the backward pass of a ``Trace``, or the tensor's ``.grad`` in a ``snapshot``.
    """

    index: int
    label: str
    op: str | None  # the operation's name; None for a leaf
    inputs: list[int]
    value: np.ndarray
    requires_grad: bool
    rule: str = ""
    expression: str = ""  # how it was computed: "apple_price * apple_count"
    grad: np.ndarray | None = None
    kind: str = "op"  # "op", "leaf" (requires grad), "constant", "module" (model_graph)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    @property
    def dtype(self) -> str:
        return str(self.value.dtype)

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "label": self.label, "op": self.op, "kind": self.kind,
                "inputs": list(self.inputs), "expression": self.expression,
                "shape": list(self.shape), "dtype": self.dtype,
                "value": _plain(self.value), "grad": _plain(self.grad), "rule": self.rule}


# Infix symbols of the arithmetic operations, for the "computed as" column.
_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**", "matmul": "@"}


def _expression(fn: Any, inputs: list[str]) -> str:
    """``a * b`` for arithmetic, ``-x``, ``x ** 2``, otherwise ``exp(x)``."""
    if fn.name in _INFIX and len(inputs) == 2:
        return f"{inputs[0]} {_INFIX[fn.name]} {inputs[1]}"
    if fn.name == "neg":
        return f"-{inputs[0]}"
    if fn.name == "powscalar":
        return f"{inputs[0]} ** {_number(fn.exponent)}"
    return f"{fn.name}({', '.join(inputs)})"


def _walk(root: Tensor, inputs_of: Callable[[Tensor], Iterable[Tensor]]) -> list[Tensor]:
    """Every tensor ``root`` was computed from, inputs before the results that use them,
    the first argument of each operation visited (and numbered) first."""
    return topological_order(root, lambda t: reversed(list(inputs_of(t))))


def _creator_inputs(t: Tensor) -> tuple[Tensor, ...]:
    fn = t.creator
    if fn is None:
        return ()
    if fn.inputs is None:
        raise RuntimeError(
            f"the graph of {label(t)} was already freed by backward(), so it cannot be "
            "shown; explain or draw it before backward(), call backward(retain_graph=True), "
            "or keep the record: trace = explain(output), then chainrule.viz.to_dot(trace)")
    return fn.inputs


def snapshot(output: Tensor, names: Mapping[str, Tensor] | None = None,
             inputs_of: Callable[[Tensor], Iterable[Tensor]] = _creator_inputs,
             ) -> tuple[list[Node], dict[int, int]]:
    """The graph behind ``output`` as a list of ``Node``s, inputs first, plus the map
    ``id(tensor) -> node index``. Values are copied, so later in-place updates (an
    optimiser step) do not change the record. ``names`` gives tensors names
    (``dict(model.named_parameters())``); ``inputs_of`` lets ``chainrule.viz`` collapse
    modules into single nodes."""
    by_id = _names_by_id(names)
    tensors = _walk(output, inputs_of)
    index = {id(t): i for i, t in enumerate(tensors)}
    nodes: list[Node] = []
    for i, t in enumerate(tensors):
        name = label(t, by_id)  # labelled in forward order: mul_1 comes before mul_2
        fn = t.creator
        inputs = [index[id(x)] for x in inputs_of(t)]
        if fn is None:
            kind = "leaf" if t.requires_grad else "constant"
            expression = "leaf (requires grad)" if t.requires_grad else "constant"
        else:
            kind = "op"
            expression = _expression(fn, [nodes[j].label for j in inputs])
        nodes.append(Node(
            index=i, label=name, op=None if fn is None else fn.name, inputs=inputs,
            value=np.array(t.data, copy=True), requires_grad=t.requires_grad,
            rule="" if fn is None else fn.rule, expression=expression,
            grad=None if t.grad is None else np.array(t.grad.data, copy=True), kind=kind))
    return nodes, index


# --------------------------------------------------------------------------- the trace
@dataclass
class Use:
    """One gradient contribution a node received: ``consumer`` used the node as its
    argument number ``position`` and sent back ``grad`` (already summed down to the
    node's shape when broadcasting had to be undone: ``summed_from`` is the shape
    before)."""

    consumer: str
    position: int
    role: str  # the argument's name in the rule: "a", "b" or "x"
    grad: np.ndarray
    summed_from: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"consumer": self.consumer, "position": self.position, "role": self.role,
                "grad": _plain(self.grad),
                "summed_from": None if self.summed_from is None else list(self.summed_from)}


@dataclass
class Send:
    """The gradient a node's operation sent to one input: upstream × local derivative.
    ``local`` is that derivative as a number when everything involved is a single value
    (so the step reads ``1.1 × 3 = 3.3``), else None."""

    input: str
    input_index: int
    position: int
    role: str  # the argument's name in the rule: "a", "b" or "x"
    grad: np.ndarray
    local: float | None = None
    summed_from: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.input, "input_index": self.input_index,
                "position": self.position, "role": self.role, "grad": _plain(self.grad),
                "local": self.local,
                "summed_from": None if self.summed_from is None else list(self.summed_from)}


@dataclass
class Step:
    """One node processed by the backward pass.

    ``upstream`` is d output/d node: the sum of the contributions in ``uses`` (empty for
    the output itself, which starts with ``seed``); ``sends`` what the local derivative
    turned it into for each input; ``grad_after`` the node's ``.grad`` afterwards (for
    leaves and tensors that retain their gradient).
    """

    number: int
    node: Node
    upstream: np.ndarray
    uses: list[Use] = field(default_factory=list)
    sends: list[Send] = field(default_factory=list)
    grad_after: np.ndarray | None = None

    @property
    def paths_added(self) -> bool:
        """True where contributions from several uses were added up."""
        return len(self.uses) > 1

    @property
    def broadcast_summed(self) -> bool:
        """True where this operation's gradient was summed over broadcast axes."""
        return any(s.summed_from is not None for s in self.sends)

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.number, "node": self.node.label, "op": self.node.op,
                "rule": self.node.rule, "upstream": _plain(self.upstream),
                "uses": [u.to_dict() for u in self.uses],
                "paths_added": self.paths_added,
                "sends": [s.to_dict() for s in self.sends],
                "broadcast_summed": self.broadcast_summed,
                "grad_after": _plain(self.grad_after)}


class _Recorder:
    """The tracer ``run_backward`` reports to; builds the ``Step``s.

    The engine reports each operation it processes. A leaf gets its step as soon as
    the last operation that uses it has sent its gradient (the graph snapshot says how
    many uses there are), so each leaf appears once, with every contribution summed.
    """

    def __init__(self, nodes: list[Node], index: dict[int, int]) -> None:
        self.nodes, self.index = nodes, index
        self.steps: list[Step] = []
        self.received: dict[int, list[Use]] = {}  # node index -> contributions so far
        self.uses_left: dict[int, int] = {}  # leaf index -> contributions still to come
        for n in nodes:
            for i in n.inputs:
                if nodes[i].kind == "leaf":
                    self.uses_left[i] = self.uses_left.get(i, 0) + 1
        self.leaves: dict[int, Tensor] = {}  # leaves that received something, by index

    def summed(self, x: Tensor, from_shape: tuple[int, ...], to_shape: tuple[int, ...]) -> None:
        # node() below sees the same unsummed gradient and notes the shapes itself
        pass

    def node(self, tensor: Tensor, grad: Tensor, fn: Any, input_grads: tuple) -> None:
        node = self.nodes[self.index[id(tensor)]]
        self._step(node, tensor, np.array(grad.data, copy=True))
        if fn is None:  # backward() started at a leaf
            return
        step = self.steps[-1]
        completed = []
        for position, (x, gx, need) in enumerate(zip(fn.inputs, input_grads,
                                                     fn.needs_input_grad)):
            if need and gx is not None:
                role = _role(position, len(fn.inputs))
                send = self._send(node, position, role, x, gx, grad)
                step.sends.append(send)
                target = send.input_index
                if target in self.uses_left:
                    self.leaves[target] = x
                    self.uses_left[target] -= 1
                    if self.uses_left[target] == 0:
                        completed.append(target)
        for target in completed:
            self._leaf_step(target)

    def finish(self) -> None:
        """Steps for leaves still waiting (some use sent no gradient)."""
        for target in list(self.leaves):
            self._leaf_step(target)

    def _leaf_step(self, target: int) -> None:
        uses = self.received.get(target, [])
        upstream = uses[0].grad.copy()
        for use in uses[1:]:
            upstream = upstream + use.grad
        self._step(self.nodes[target], self.leaves.pop(target), upstream)

    def _step(self, node: Node, tensor: Tensor, upstream: np.ndarray) -> None:
        step = Step(number=len(self.steps) + 1, node=node, upstream=upstream,
                    uses=self.received.pop(node.index, []))
        node.grad = step.upstream
        if tensor.grad is not None and (tensor.creator is None or tensor._retains_grad):
            step.grad_after = np.array(tensor.grad.data, copy=True)
        self.steps.append(step)

    def _send(self, node: Node, position: int, role: str, x: Tensor, gx: Tensor,
              g: Tensor) -> Send:
        from chainrule.ops import sum_to  # the engine's own way of undoing broadcasting

        summed_from = None
        if gx.shape != x.shape:
            summed_from = tuple(gx.shape)
            with no_grad():
                gx = sum_to(gx, x.shape)
        sent = np.array(gx.data, copy=True)
        local = None
        if g.size == 1 and sent.size == 1 and x.size == 1 and g.data.item() != 0:
            local = float(sent.item()) / float(g.data.item())
        target = self.index[id(x)]
        self.received.setdefault(target, []).append(
            Use(node.label, position, role, sent, summed_from))
        return Send(self.nodes[target].label, target, position, role, sent, local,
                    summed_from)


class Trace:
    """The record of one forward and backward pass (made by ``explain``).

    ``nodes``: the graph in forward order (values, and the gradient each received);
    ``steps``: the backward pass in the order the engine processed the nodes.
    ``print(trace)`` shows both as tables; ``to_markdown()`` and ``to_dict()`` give
    the same for documents and programs; ``grads`` maps labels to d output/d node.
    """

    def __init__(self, nodes: list[Node], steps: list[Step], output: int,
                 seeded: bool) -> None:
        self.nodes, self.steps, self.output = nodes, steps, output
        self.seeded = seeded  # True when backward started from a given gradient

    @property
    def output_label(self) -> str:
        return self.nodes[self.output].label

    @property
    def grads(self) -> dict[str, np.ndarray]:
        """d output/d node for every node the gradient reached, by label."""
        return {s.node.label: s.upstream for s in self.steps}

    def node(self, name: str) -> Node:
        """The node labelled ``name``."""
        for n in self.nodes:
            if n.label == name:
                return n
        raise KeyError(f"no node labelled {name!r}; the labels are "
                       f"{', '.join(n.label for n in self.nodes)}")

    def step(self, name: str) -> Step:
        """The backward step of the node labelled ``name``."""
        for s in self.steps:
            if s.node.label == name:
                return s
        raise KeyError(f"no backward step for {name!r} (a constant, or not on a path to "
                       f"the output); the steps are {', '.join(self.grads)}")

    # ------------------------------------------------------------------ rows
    # One set of rows (each cell a list of lines) serves the text and Markdown tables.
    def _forward_rows(self, max_elements: int) -> tuple[list[str], list[list[list[str]]]]:
        shapes = any(n.value.ndim > 0 for n in self.nodes)
        header = ["#", "node", *(["shape"] if shapes else []), "value", "computed as"]
        rows = []
        for n in self.nodes:
            shape = [[str(n.shape)]] if shapes else []
            rows.append([[str(n.index + 1)], [n.label], *shape,
                         [format_value(n.value, max_elements)], [n.expression]])
        return header, rows

    def _backward_rows(self, max_elements: int) -> tuple[list[str], list[list[list[str]]]]:
        out = self.output_label
        header = ["step", "node", "op", f"receives d {out}/d node", "local derivative rule",
                  "sends to each input (upstream × local)"]
        fmt = lambda a: format_value(a, max_elements)  # noqa: E731
        rows = []
        for s in self.steps:
            if not s.uses:
                start = "given gradient" if self.seeded else f"start: d {out}/d {out}"
                receives = [f"{fmt(s.upstream)}  ({start})"]
            else:
                receives = [f"{fmt(u.grad)}  from {u.consumer} (as {u.role})"
                            + _summed_mark(u.summed_from, s.node.shape) for u in s.uses]
                if s.paths_added:
                    receives.append(f"= {fmt(s.upstream)}  (sum of {len(s.uses)} paths)")
            sends = []
            for send in s.sends:
                if send.local is not None:
                    value = (f"{fmt(s.upstream)} × {_number(send.local)} = "
                             f"{fmt(send.grad)}")
                else:
                    value = fmt(send.grad)
                sends.append(f"{send.input} (as {send.role}) ← {value}"
                             + _summed_mark(send.summed_from,
                                            self.nodes[send.input_index].shape))
            if s.grad_after is not None:
                sends.append(f".grad = {fmt(s.grad_after)}")
            rule = s.node.rule or ("(a leaf: keeps its gradient)" if s.node.op is None
                                   else "")
            rows.append([[str(s.number)], [s.node.label], [s.node.op or "leaf"],
                         receives, [rule], sends or ["—"]])
        return header, rows

    def _summary_rows(self, max_elements: int) -> tuple[list[str], list[list[list[str]]]]:
        out = self.output_label
        rows = [[[f"d {out}/d {s.node.label}"], [format_value(s.upstream, max_elements)]]
                for s in self.steps if s.node.op is None]
        return ["gradient", "value"], rows

    # ------------------------------------------------------------------ renderings
    def forward_table(self, max_elements: int = SMALL) -> str:
        """The forward pass: each node's value and how it was computed."""
        return _text_table(*self._forward_rows(max_elements))

    def backward_table(self, max_elements: int = SMALL) -> str:
        """The backward pass, one row per node in the order it was processed."""
        return _text_table(*self._backward_rows(max_elements), right=(0,))

    def to_text(self, max_elements: int = SMALL) -> str:
        """Both passes and the leaves' gradients as plain-text tables."""
        out = self.nodes[self.output]
        value = format_value(out.value, max_elements)
        return "\n".join([
            f"Forward pass: {out.label} = {value}",
            self.forward_table(max_elements), "",
            f"Backward pass: d {out.label}/d node, in the order the nodes are processed",
            self.backward_table(max_elements), "",
            "Gradients of the leaves",
            _text_table(*self._summary_rows(max_elements)),
        ])

    def to_markdown(self, max_elements: int = SMALL) -> str:
        """The same tables in Markdown (multi-line cells joined with ``<br>``)."""
        out = self.nodes[self.output]
        return "\n".join([
            f"**Forward pass:** `{out.label}` = {format_value(out.value, max_elements)}", "",
            _markdown_table(*self._forward_rows(max_elements)), "",
            f"**Backward pass:** d {out.label}/d node, in the order the nodes are "
            "processed", "",
            _markdown_table(*self._backward_rows(max_elements)), "",
            "**Gradients of the leaves**", "",
            _markdown_table(*self._summary_rows(max_elements)),
        ]) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain Python data (lists, numbers, strings: JSON-ready)."""
        return {"output": self.output_label, "value": _plain(self.nodes[self.output].value),
                "seeded": self.seeded, "forward": [n.to_dict() for n in self.nodes],
                "backward": [s.to_dict() for s in self.steps]}

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return (f"<Trace of {self.output_label}: {len(self.nodes)} nodes, "
                f"{len(self.steps)} backward steps>")

    def _repr_markdown_(self) -> str:  # Jupyter shows the Markdown tables
        return self.to_markdown()


def _role(position: int, count: int) -> str:
    """The name an argument has in the rules: x for one input, a and b for two."""
    if count == 1:
        return "x"
    if count == 2:
        return "ab"[position]
    return f"argument {position + 1}"


def _summed_mark(summed_from: tuple[int, ...] | None, shape: tuple[int, ...]) -> str:
    if summed_from is None:
        return ""
    return f"  [Σ broadcast: {summed_from} summed to {shape}]"


def _text_table(header: list[str], rows: list[list[list[str]]],
                right: tuple[int, ...] = ()) -> str:
    """A plain table; a cell may hold several lines; columns in ``right`` align right."""
    widths = [len(h) for h in header]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], *(len(line) for line in cell))

    def line(cells: list[str]) -> str:
        parts = [c.rjust(w) if i in right else c.ljust(w)
                 for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()

    lines = [line(header), line(["-" * w for w in widths])]
    for row in rows:
        for k in range(max(len(cell) for cell in row)):
            lines.append(line([cell[k] if k < len(cell) else "" for cell in row]))
    return "\n".join(lines)


def _markdown_table(header: list[str], rows: list[list[list[str]]]) -> str:
    def cell(lines: list[str]) -> str:
        return "<br>".join(x.replace("|", "\\|") for x in lines)

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


# --------------------------------------------------------------------------- explain
def explain(output: Tensor, grad: Any = None, retain_graph: bool | None = None,
            create_graph: bool = False, names: Mapping[str, Tensor] | None = None) -> Trace:
    """Backpropagate from ``output`` like ``output.backward(grad)``, recording each step.

    The leaves' ``.grad`` are filled exactly as by ``backward`` (the same engine runs;
    ``retain_graph`` defaults to ``create_graph`` there too).
    ``names`` labels tensors that have no ``name`` (pass
    ``dict(model.named_parameters())`` to see ``fc1.weight``). Returns a ``Trace``;
    ``print`` it to read the forward values and the backward pass as tables.
    """
    if not isinstance(output, Tensor):
        raise TypeError(f"explain() needs the Tensor to backpropagate from, got "
                        f"{type(output).__name__}")
    nodes, index = snapshot(output, names)  # before backward frees the graph
    for n in nodes:
        n.grad = None  # a trace shows this pass's gradients, not earlier .grad
    recorder = _Recorder(nodes, index)
    run_backward(output, grad, create_graph=create_graph, tracer=recorder,
                 retain_graph=create_graph if retain_graph is None else retain_graph)
    recorder.finish()
    return Trace(nodes, recorder.steps, output=index[id(output)], seeded=grad is not None)


def shopping_example() -> Tensor:
    """The textbook's shopping example: 2 apples at 100 and 3 oranges at 150, plus 10 %
    tax. Returns ``total`` (715); every input is a named leaf that requires grad."""
    apple_price = Tensor(100.0, requires_grad=True, name="apple_price")
    apple_count = Tensor(2.0, requires_grad=True, name="apple_count")
    orange_price = Tensor(150.0, requires_grad=True, name="orange_price")
    orange_count = Tensor(3.0, requires_grad=True, name="orange_count")
    tax = Tensor(1.1, requires_grad=True, name="tax")
    apple_total = apple_price * apple_count
    apple_total.name = "apple_total"
    orange_total = orange_price * orange_count
    orange_total.name = "orange_total"
    subtotal = apple_total + orange_total
    subtotal.name = "subtotal"
    total = subtotal * tax
    total.name = "total"
    return total
