"""chainrule.viz: DOT text (parsed back), rendering with and without Graphviz, model
graphs with one box per layer."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from chainrule import Tensor
from chainrule.explain import explain, shopping_example
from chainrule.viz import (
    Graph,
    GraphvizMissingWarning,
    GraphvizNotFoundError,
    graph,
    model_graph,
    render,
    to_dot,
)

_NODE = re.compile(r'^\s*n(\d+) \[label="((?:[^"\\]|\\.)*)"(.*)\];$', re.M)
_EDGE = re.compile(r'^\s*n(\d+) -> n(\d+)(?: \[label="((?:[^"\\]|\\.)*)".*\])?;$', re.M)


def parse(dot: str) -> tuple[dict[str, list[str]], list[tuple[str, str, str | None]]]:
    """Nodes as {name: label lines} and edges as (source name, target name, label)."""
    ids = {}
    nodes = {}
    for number, text, _ in _NODE.findall(dot):
        lines = text.replace('\\"', '"').split("\\n")
        ids[number] = lines[0]
        nodes[lines[0]] = lines
    edges = [(ids[a], ids[b], text or None) for a, b, text in _EDGE.findall(dot)]
    return nodes, edges


@pytest.fixture
def no_dot(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)


# --------------------------------------------------------------------------- DOT text
def test_dot_of_a_tensor_has_every_node_and_edge():
    dot = to_dot(shopping_example())
    assert dot.startswith("digraph chainrule {") and dot.rstrip().endswith("}")
    nodes, edges = parse(dot)
    assert len(nodes) == 9 and len(edges) == 8
    assert sorted((a, b) for a, b, _ in edges) == sorted([
        ("apple_price", "apple_total"), ("apple_count", "apple_total"),
        ("orange_price", "orange_total"), ("orange_count", "orange_total"),
        ("apple_total", "subtotal"), ("orange_total", "subtotal"),
        ("subtotal", "total"), ("tax", "total")])
    assert nodes["apple_total"] == ["apple_total", "mul · scalar float32", "value 200"]
    assert nodes["subtotal"][1:] == ["add · scalar float32", "value 650"]
    assert nodes["total"][2] == "value 715"
    assert nodes["tax"] == ["tax", "leaf · scalar float32", "value 1.1"]
    assert not any(line.startswith("grad") for lines in nodes.values() for line in lines)
    assert 'label="total = 715"' in dot
    # the output is drawn with a thick border
    assert re.search(r'n\d+ \[label="total\\n.*penwidth=2\.5\];', dot)


def test_dot_of_a_trace_shows_both_passes():
    nodes, edges = parse(to_dot(explain(shopping_example())))
    grads = {name: lines[-1] for name, lines in nodes.items()}
    assert grads == {"apple_price": "grad 2.2", "apple_count": "grad 110",
                     "orange_price": "grad 3.3", "orange_count": "grad 165",
                     "tax": "grad 650", "apple_total": "grad 1.1",
                     "orange_total": "grad 1.1", "subtotal": "grad 1.1", "total": "grad 1"}
    sent = {(a, b): text for a, b, text in edges}
    assert sent[("tax", "total")] == "← 650" and sent[("subtotal", "total")] == "← 1.1"
    assert sent[("apple_count", "apple_total")] == "← 110"
    nodes, edges = parse(to_dot(explain(shopping_example()), values=False, grads=False))
    assert nodes["subtotal"] == ["subtotal", "add · scalar float32"]
    assert all(text is None for _, _, text in edges)


def test_dot_shows_leaf_grads_after_backward_and_summaries_of_big_tensors():
    x = Tensor(np.ones((10, 10), np.float32), requires_grad=True, name="x")
    y = (x * 2.0).sum()
    y.backward(retain_graph=True)
    nodes, edges = parse(to_dot(y))
    assert nodes["x"] == ["x", "leaf · (10, 10) float32", "value (10, 10) ‖·‖=10",
                          "grad (10, 10) ‖·‖=20"]
    assert nodes["2"][1] == "constant · scalar float32"  # the constant factor
    assert len(nodes) == 4 and len(edges) == 3


def test_a_value_used_twice_gets_two_edges():
    x = Tensor(3.0, requires_grad=True, name="x")
    y = x * x
    y.name = "y"
    nodes, edges = parse(to_dot(explain(y)))
    assert [(a, b) for a, b, _ in edges] == [("x", "y"), ("x", "y")]
    assert [text for _, _, text in edges] == ["← 3", "← 3"]
    assert nodes["x"][-1] == "grad 6 (sum of 2 paths)"


def test_dot_of_a_trace_marks_broadcasting_and_added_paths():
    W = Tensor(np.ones((3, 2)), requires_grad=True, name="W")
    b = Tensor([1.0, 2.0], requires_grad=True, name="b", dtype=np.float64)  # as W
    x = Tensor(3.0, requires_grad=True, name="x", dtype=np.float64)
    s = W + b
    s.name = "s"
    loss = (s * x).sum() + x * x
    nodes, edges = parse(to_dot(explain(loss)))
    sent = {(a, b): text for a, b, text in edges}
    assert sent[("b", "s")] == "← [9, 9]\\nΣ (3, 2) → (2,)"
    assert sent[("W", "s")] == "← [[3, 3], [3, 3], [3, 3]]"
    assert nodes["x"][-1] == "grad 21 (sum of 3 paths)"  # 15 + 3 + 3
    assert nodes["b"][-1] == "grad [9, 9]"


def test_labels_are_escaped():
    x = Tensor(1.0, requires_grad=True, name='say "hi" \\ there')
    dot = to_dot(x * 2.0)
    assert 'label="say \\"hi\\" \\\\ there\\n' in dot
    nodes, _ = parse(dot)
    assert len(nodes) == 3


_GRAPHVIZ_MARGIN = (0.11, 0.055)  # Graphviz's default space around a node's label, in


@pytest.mark.parametrize("picture", ["trace", "tensor", "model"])
def test_boxes_grow_to_fit_their_labels_with_room_to_spare(picture):
    """No label is clipped by its box: every node is a shape that Graphviz sizes to its
    label (no fixedsize, width or height), with twice the default margin around it, so a
    viewer's wider font or a rounded corner still leaves the text inside."""
    x = Tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True, name="x")
    dot = {"trace": lambda: to_dot(explain(shopping_example())),
           "tensor": lambda: to_dot((x * x).sum()),
           "model": lambda: model_graph(nn.TwoLayerNet(4, 3, 2, seed=0),
                                        np.zeros((1, 4))).source}[picture]()
    defaults = re.search(r"^\s*node \[(.*)\];$", dot, re.M)
    assert defaults is not None, dot
    margin = re.search(r'margin="([\d.]+),([\d.]+)"', defaults.group(1))
    assert margin is not None, defaults.group(1)
    assert float(margin.group(1)) >= 2 * _GRAPHVIZ_MARGIN[0]
    assert float(margin.group(2)) >= 2 * _GRAPHVIZ_MARGIN[1]
    nodes = [attrs for _, _, attrs in _NODE.findall(dot)]
    assert nodes
    for attrs in nodes:
        assert re.search(r"shape=(box|box3d)\b", attrs), attrs
        # nothing fixes the size or overrides the margin (penwidth is the border)
        assert not re.search(r"\b(fixedsize|width|height|margin)=", attrs), attrs
    assert "fixedsize" not in dot


def test_dot_errors():
    total = shopping_example()
    total.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        to_dot(total)
    with pytest.raises(TypeError, match="Tensor, a Trace"):
        to_dot("total")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- rendering
def test_render_without_graphviz_writes_dot_and_says_how_to_install(tmp_path, no_dot):
    trace = explain(shopping_example())
    with pytest.warns(GraphvizMissingWarning) as caught:
        written = render(trace, tmp_path / "graph.svg")
    assert written == tmp_path / "graph.dot"
    assert written.read_text(encoding="utf-8") == to_dot(trace)
    assert not (tmp_path / "graph.svg").exists()
    message = str(caught[0].message)
    for hint in ("apt install graphviz", "brew install graphviz", "conda install graphviz",
                 "graph.dot"):
        assert hint in message
    with pytest.raises(GraphvizNotFoundError, match="apt install graphviz"):
        render(trace, tmp_path / "strict.png", strict=True)
    assert render(trace, tmp_path / "g.gv") == tmp_path / "g.gv"  # DOT needs no Graphviz
    with pytest.raises(ValueError, match=r"\.svg, \.png"):
        render(trace, tmp_path / "graph.jpeg")


def test_graph_shows_its_dot_source_in_jupyter_without_graphviz(no_dot):
    g = graph(shopping_example())
    assert isinstance(g, Graph) and str(g) == g.source
    assert g._repr_svg_() is None
    page = g._repr_html_()
    assert "<pre>" in page and "digraph chainrule" in page
    assert "&quot;" in page or "&#x27;" in page  # the DOT text is HTML-escaped
    assert "apt install graphviz" in page
    with pytest.raises(GraphvizNotFoundError):
        g.svg()


requires_dot = pytest.mark.skipif(shutil.which("dot") is None,
                                  reason="Graphviz's dot program is not installed")


@requires_dot
def test_render_with_graphviz(tmp_path):
    trace = explain(shopping_example())
    svg = render(trace, tmp_path / "graph.svg")
    assert svg == tmp_path / "graph.svg"
    text = svg.read_text(encoding="utf-8")
    assert "<svg" in text and "apple_price" in text and "← 650" in text
    png = render(trace, tmp_path / "graph.png", strict=True)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    g = graph(trace)
    assert g._repr_svg_().lstrip().startswith("<?xml") or "<svg" in g._repr_svg_()
    assert "<svg" in g._repr_html_()


# --------------------------------------------------------------------------- models
nn = pytest.importorskip("chainrule.nn")


def test_model_graph_has_one_box_per_layer():
    model = nn.TwoLayerNet(784, 50, 10, seed=0)
    g = model_graph(model, np.zeros((1, 784)))
    nodes, edges = parse(g.source)
    assert list(nodes) == ["input", "fc1", "relu", "fc2"]
    assert nodes["fc1"][1:] == ["Linear 784→50", "(1, 50) float32", "39,250 parameters"]
    assert nodes["relu"][1] == "ReLU"
    assert nodes["fc2"][1] == "Linear 50→10"
    assert edges == [("input", "fc1", "(1, 784)"), ("fc1", "relu", "(1, 50)"),
                     ("relu", "fc2", "(1, 50)")]
    assert "TwoLayerNet (39,760 parameters)" in g.source
    # the children's forward methods are back to normal
    assert all("forward" not in vars(m) for m in model.modules())


def test_model_graph_opens_containers_and_keeps_functional_operations():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, 8), nn.Tanh())
            self.head = nn.Linear(8, 2)

        def forward(self, x):
            return self.head(self.body(x).relu())

    nodes, edges = parse(model_graph(Net(), np.zeros((3, 4))).source)
    assert list(nodes)[0] == "input" and list(nodes)[-1] == "head"
    assert "body.0" in nodes and "body.1" in nodes
    assert nodes["body.0"][1] == "Linear 4→8"
    relu = next(name for name, lines in nodes.items() if lines[1].startswith("relu"))
    assert ("body.1", relu, "(3, 8)") in edges and (relu, "head", "(3, 8)") in edges
    assert len(nodes) == 5 and len(edges) == 4
