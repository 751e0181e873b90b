"""chainrule.explain: the recorded backward pass must read like a hand derivation."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from chainrule import Tensor
from chainrule.explain import (
    Trace,
    explain,
    format_value,
    label,
    reset_labels,
    shopping_example,
)
from chainrule.tensor import Function

LEAVES = {"apple_price": 2.2, "apple_count": 110.0, "orange_price": 3.3,
          "orange_count": 165.0, "tax": 650.0}


@pytest.fixture
def shopping() -> Trace:
    return explain(shopping_example())


def _value(array: np.ndarray) -> float:
    return float(np.asarray(array).item())


# --------------------------------------------------------------------------- shopping
def test_forward_values_and_how_they_were_computed(shopping):
    values = {n.label: _value(n.value) for n in shopping.nodes}
    assert values["apple_total"] == pytest.approx(200)
    assert values["orange_total"] == pytest.approx(450)
    assert values["subtotal"] == pytest.approx(650)
    assert values["total"] == pytest.approx(715)
    assert shopping.node("apple_total").expression == "apple_price * apple_count"
    assert shopping.node("subtotal").expression == "apple_total + orange_total"
    assert shopping.node("total").expression == "subtotal * tax"
    assert shopping.node("tax").expression == "leaf (requires grad)"
    # inputs come before the results that use them
    for node in shopping.nodes:
        assert all(i < node.index for i in node.inputs)


def test_every_gradient_of_the_shopping_example(shopping):
    grads = {name: _value(g) for name, g in shopping.grads.items()}
    for name, expected in LEAVES.items():
        assert grads[name] == pytest.approx(expected, rel=1e-6)
    for product in ("apple_total", "orange_total", "subtotal"):
        assert grads[product] == pytest.approx(1.1, rel=1e-6)
    assert grads["total"] == 1.0
    assert len(shopping.steps) == 9 and len(shopping.nodes) == 9


def test_backward_fills_grad_like_backward_does(shopping):
    total = shopping_example()
    trace = total.backward(trace=True)
    assert isinstance(trace, Trace)
    leaves = {s.node.label: _value(s.grad_after) for s in trace.steps if s.node.op is None}
    assert leaves == pytest.approx(LEAVES, rel=1e-6)
    plain = shopping_example()
    assert plain.backward() is None


def test_steps_follow_the_engine_order_and_list_each_use(shopping):
    first = shopping.steps[0]
    assert first.node.label == "total" and first.uses == [] and _value(first.upstream) == 1
    assert first.node.rule == "d(a*b)/da = b, d(a*b)/db = a"
    sends = {s.input: (s.role, _value(s.grad), s.local) for s in first.sends}
    assert sends["subtotal"][0] == "a" and sends["tax"][0] == "b"
    assert sends["subtotal"][1] == pytest.approx(1.1) and sends["subtotal"][2] == \
        pytest.approx(1.1)
    assert sends["tax"][1] == pytest.approx(650) and sends["tax"][2] == pytest.approx(650)

    tax = shopping.step("tax")
    assert [(u.consumer, u.position, u.role) for u in tax.uses] == [("total", 1, "b")]
    assert _value(tax.uses[0].grad) == pytest.approx(650)
    apple_total = shopping.step("apple_total")
    assert [(u.consumer, u.role) for u in apple_total.uses] == [("subtotal", "a")]
    locals_ = {s.input: s.local for s in apple_total.sends}
    assert locals_ == pytest.approx({"apple_price": 2.0, "apple_count": 100.0})
    # every node is processed after all the nodes that use it
    done = set()
    for step in shopping.steps:
        assert all(u.consumer in done for u in step.uses)
        done.add(step.node.label)
    # nothing was broadcast, no value was used twice
    assert not any(s.paths_added or s.broadcast_summed for s in shopping.steps)


def test_text_table_reads_like_a_hand_derivation(shopping):
    text = str(shopping)
    assert text.startswith("Forward pass: total = 715")
    rows = {line.split()[1]: line for line in text.splitlines()
            if re.match(r"^\d+\s", line)}
    assert rows["apple_total"].split()[2] == "200"
    assert rows["orange_total"].split()[2] == "450"
    assert rows["subtotal"].split()[2] == "650"
    assert rows["total"].split()[2] == "715"
    for expected in [
        "1  (start: d total/d total)",
        "subtotal (as a) ← 1 × 1.1 = 1.1",
        "tax (as b) ← 1 × 650 = 650",
        "apple_total (as a) ← 1.1 × 1 = 1.1",
        "orange_total (as b) ← 1.1 × 1 = 1.1",
        "apple_price (as a) ← 1.1 × 2 = 2.2",
        "apple_count (as b) ← 1.1 × 100 = 110",
        "orange_price (as a) ← 1.1 × 3 = 3.3",
        "orange_count (as b) ← 1.1 × 150 = 165",
        "650  from total (as b)",
        "1.1  from subtotal (as a)",
        "d(a+b)/da = 1, d(a+b)/db = 1",
        ".grad = 2.2",
    ]:
        assert expected in text, expected
    summary = text.split("Gradients of the leaves")[1]
    for name, value in LEAVES.items():
        assert re.search(rf"d total/d {name}\s+{value:g}\b", summary), name


def test_markdown_rendering(shopping):
    md = shopping.to_markdown()
    tables = [line for line in md.splitlines() if line.startswith("|")]
    # three tables: forward (9 rows), backward (9 rows), leaves (5 rows), each + 2 header
    assert len(tables) == (9 + 2) + (9 + 2) + (5 + 2)
    total_row = next(line for line in tables if line.startswith("| 1 | total |"))
    assert "subtotal (as a) ← 1 × 1.1 = 1.1<br>tax (as b) ← 1 × 650 = 650" in total_row
    assert "| 9 | total | 715 | subtotal * tax |" in md
    assert shopping._repr_markdown_() == md


def test_dict_rendering_is_plain_data(shopping):
    data = shopping.to_dict()
    json.dumps(data)  # nothing but lists, numbers, strings, booleans and None
    assert data["output"] == "total" and data["value"] == pytest.approx(715)
    forward = {n["label"]: n for n in data["forward"]}
    assert forward["subtotal"]["value"] == pytest.approx(650)
    assert forward["subtotal"]["inputs"] == [forward["apple_total"]["index"],
                                             forward["orange_total"]["index"]]
    backward = {s["node"]: s for s in data["backward"]}
    assert backward["tax"]["upstream"] == pytest.approx(650)
    assert backward["tax"]["uses"][0]["consumer"] == "total"
    assert backward["total"]["sends"][1]["input"] == "tax"
    assert backward["total"]["sends"][1]["local"] == pytest.approx(650)


# --------------------------------------------------------------------------- fan-out
class StopsGradient(Function):
    """y = 2x whose backward sends nothing back (as a custom op might)."""

    def forward(self, x):
        return 2 * x

    def backward(self, g):
        return None


def test_a_leaf_whose_use_sends_nothing_still_gets_its_step():
    x = Tensor(3.0, requires_grad=True, name="x")
    y = StopsGradient()(x) + x * 4.0
    y.name = "y"
    trace = explain(y)
    step = trace.step("x")  # one use sent 4, the other nothing: x still appears once
    assert [s.node.label for s in trace.steps].count("x") == 1
    assert _value(step.upstream) == 4.0 and x.grad.item() == 4.0


def test_fan_out_lists_both_contributions_and_their_sum():
    x = Tensor(3.0, requires_grad=True, name="x")
    p = x * 4.0  # 12
    q = x + 1.0  # 4
    y = p * q  # dy/dx = 4·q + p = 16 + 12 = 28
    p.name, q.name, y.name = "p", "q", "y"
    trace = explain(y)
    step = trace.step("x")
    # the engine works newest first: q (computed after p) sends its gradient first
    assert [(u.consumer, _value(u.grad)) for u in step.uses] == [("q", 12.0), ("p", 16.0)]
    assert step.paths_added and _value(step.upstream) == 28.0
    assert x.grad.item() == 28.0
    text = trace.to_text()
    assert "16  from p (as a)" in text and "12  from q (as a)" in text
    assert "= 28  (sum of 2 paths)" in text
    assert trace.to_dict()["backward"][-1]["paths_added"] is True


def test_a_value_used_twice_by_one_operation():
    x = Tensor(3.0, requires_grad=True, name="x")
    y = x * x + x  # dy/dx = 2x + 1 = 7
    trace = explain(y)
    step = trace.step("x")
    assert sorted(_value(u.grad) for u in step.uses) == [1.0, 3.0, 3.0]
    assert sorted(u.role for u in step.uses if _value(u.grad) == 3.0) == ["a", "b"]
    assert "= 7  (sum of 3 paths)" in str(trace)


# --------------------------------------------------------------------------- broadcasting
def test_broadcasting_is_marked_where_it_is_summed_away():
    W = Tensor(np.ones((3, 2)), requires_grad=True, name="W")
    b = Tensor([1.0, 2.0], requires_grad=True, name="b", dtype=np.float64)  # as W
    s = W + b
    s.name = "s"
    trace = explain(s.sum())
    add = trace.step("s")
    to_b = next(send for send in add.sends if send.input == "b")
    to_W = next(send for send in add.sends if send.input == "W")
    assert to_b.summed_from == (3, 2) and to_b.grad.tolist() == [3.0, 3.0]
    assert to_W.summed_from is None and to_b.local is None
    assert add.broadcast_summed
    assert trace.step("b").uses[0].summed_from == (3, 2)
    assert np.array_equal(b.grad.numpy(), [3.0, 3.0])
    text = str(trace)
    assert "b (as b) ← [3, 3]  [Σ broadcast: (3, 2) summed to (2,)]" in text
    assert "[[2, 3], [2, 3], [2, 3]]" in text  # a small 2-D value on one line
    assert "Σ broadcast: (3, 2) summed to (2,)" in trace.to_markdown()
    assert trace.to_dict()["backward"][1]["sends"][1]["summed_from"] == [3, 2]


# --------------------------------------------------------------------------- names
def test_automatic_names_are_operation_and_counter():
    reset_labels()
    a = Tensor(2.0, requires_grad=True)
    b = a * 3.0
    c = b * a
    d = c.exp()
    assert [label(t) for t in (a, b, c, d)] == ["leaf_1", "mul_1", "mul_2", "exp_1"]
    assert label(b) == "mul_1"  # stable while the tensor lives
    assert label(Tensor(2.0)) == "2"  # an unnamed constant shows its value
    assert Tensor(1.0, name="apple").name == "apple" and label(Tensor(1.0, name="apple")) \
        == "apple"
    assert label(a, {id(a): "fc1.weight"}) == "fc1.weight"
    # Function.__call__ never computes a name: results stay unnamed until asked
    assert (a * 2.0).name is None


def test_names_from_named_parameters():
    w = Tensor(np.ones((2, 2)), requires_grad=True)
    x = Tensor(np.ones((1, 2)))
    trace = explain((x @ w).sum(), names={"fc1.weight": w})
    assert "fc1.weight" in trace.grads
    assert "fc1.weight (as b) ←" in str(trace)


def test_a_model_traced_with_its_parameter_names():
    nn = pytest.importorskip("chainrule.nn")
    model = nn.Sequential(nn.Linear(3, 2, seed=0), nn.ReLU(), nn.Linear(2, 1, seed=1))
    loss = model(np.ones((4, 3), np.float32)).mean()
    trace = explain(loss, names=dict(model.named_parameters()))
    for name in ("0.weight", "0.bias", "2.weight", "2.bias"):
        np.testing.assert_array_equal(trace.grads[name], dict(model.named_parameters())[
            name].grad.numpy())
    text = str(trace)
    assert "0.weight (as argument 2) ←" in text and "d relu(x)/dx" in text
    assert re.search(r"linear\(const_\d+, 0\.weight, 0\.bias\)", text)


# --------------------------------------------------------------------------- values
def test_big_tensors_are_summarised_as_shape_and_norm():
    assert format_value(np.array(715.0, dtype=np.float32)) == "715"
    assert format_value(np.array([1.5, -2.0])) == "[1.5, -2]"
    assert format_value(np.array([np.pi])) == "[3.142]" and format_value(np.pi) == "3.14159"
    assert format_value(np.ones((3, 4))) == "(3, 4) ‖·‖=3.464"
    x = Tensor(np.ones((10, 10)), requires_grad=True, name="x")
    text = str(explain((x * 2.0).sum()))
    assert "(10, 10) ‖·‖=20" in text and "(10, 10) ‖·‖=10" in text


def test_given_gradient_for_a_vector_output():
    x = Tensor([1.0, 2.0], requires_grad=True, name="x")
    y = x * 3.0
    trace = explain(y, grad=np.array([1.0, 10.0], dtype=np.float32))
    assert trace.seeded and "given gradient" in str(trace)
    assert x.grad.tolist() == [3.0, 30.0]


def test_explain_agrees_with_plain_backward(rng):
    def net(seed):
        r = np.random.default_rng(seed)
        x = Tensor(r.normal(size=(4, 3)))
        w = Tensor(r.normal(size=(3, 2)), requires_grad=True)
        b = Tensor(r.normal(size=(2,)), requires_grad=True)
        return ((x @ w + b).tanh() ** 2).mean(), w, b

    loss, w, b = net(1)
    loss.backward()
    loss2, w2, b2 = net(1)
    trace = explain(loss2)
    np.testing.assert_allclose(w2.grad.numpy(), w.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(b2.grad.numpy(), b.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(trace.grads[label(w2)], w.grad.numpy(), rtol=1e-6)


# --------------------------------------------------------------------------- errors
def test_errors_say_what_to_do():
    total = shopping_example()
    total.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        explain(total)
    with pytest.raises(TypeError, match="Tensor"):
        explain(715.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="does not require grad"):
        explain(Tensor(1.0) * 2.0)
    with pytest.raises(KeyError, match="apple_price"):
        explain(shopping_example()).node("banana")


def test_every_operation_states_its_local_derivative():
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    import chainrule.ops  # noqa: F401 - defines the operations

    missing = [f"{c.__module__}.{c.__name__}" for c in subclasses(Function)
               if "forward" in vars(c) and c.__module__.startswith("chainrule.")
               and not c.rule.strip()]
    assert missing == []
