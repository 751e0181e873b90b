"""``chainrule explain`` and ``chainrule graph``: output, expressions, exit statuses."""

from __future__ import annotations

import re
import shutil

import pytest
from click.testing import CliRunner

from chainrule.cli import main


def run(*args: str):
    return CliRunner().invoke(main, list(args))


# --------------------------------------------------------------------------- explain
def test_explain_prints_the_shopping_example():
    result = run("explain")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Forward pass: total = 715" in out
    for line in ("subtotal (as a) ← 1 × 1.1 = 1.1", "tax (as b) ← 1 × 650 = 650",
                 "apple_price (as a) ← 1.1 × 2 = 2.2", "apple_count (as b) ← 1.1 × 100 = 110",
                 "orange_price (as a) ← 1.1 × 3 = 3.3",
                 "orange_count (as b) ← 1.1 × 150 = 165"):
        assert line in out
    for value in ("200", "450", "650", "715"):
        assert f" {value} " in out


def test_explain_markdown():
    result = run("explain", "--markdown")
    assert result.exit_code == 0, result.output
    assert "| step | node | op |" in result.output
    assert "| 9 | total | 715 | subtotal * tax |" in result.output


def test_explain_an_expression():
    result = run("explain", "--expr", "(a*b + c*d)*t",
                 "--values", "a=100,b=2,c=150,d=3,t=1.1")
    assert result.exit_code == 0, result.output
    assert "Forward pass: f = 715" in result.output
    summary = result.output.split("Gradients of the leaves")[1]
    for name, value in {"a": "2.2", "b": "110", "c": "3.3", "d": "165", "t": "650"}.items():
        assert f"d f/d {name}" in summary and value in summary
    assert "mul_1" in result.output  # automatic names restart for each command


def test_explain_functions_powers_and_fan_out():
    result = run("explain", "--expr", "tanh(x) + x**2 - -x/2", "--values", "x=0")
    assert result.exit_code == 0, result.output
    assert "d f/d x   1.5" in result.output  # 1 - tanh²0 + 2·0 + 1/2
    assert "(sum of 3 paths)" in result.output
    assert "d(x^c)/dx = c·x^(c-1)" in result.output  # x**2 uses the power rule


@pytest.mark.parametrize("args, message", [
    (["--expr", "a+", "--values", "a=1"], "not a valid expression"),
    (["--expr", "a.real", "--values", "a=1"], "'a.real' is not allowed"),
    (["--expr", "__import__('os').system('echo hi')"], "is not allowed"),
    (["--expr", "open(a)", "--values", "a=1"], "the functions are exp"),
    (["--expr", "exp(a, a)", "--values", "a=1"], "each with one argument"),
    (["--expr", "a + 'b'", "--values", "a=1"], "is not a number"),
    (["--expr", "[a]", "--values", "a=1"], "is not allowed"),
    (["--expr", "a*b", "--values", "a=1"], "no value for b"),
    (["--expr", "a*b"], "no value for a, b"),
    (["--expr", "a", "--values", "a=1,z=2"], "z not used"),
    (["--expr", "a", "--values", "a=x"], "is not a number"),
    (["--expr", "a", "--values", "a"], "is not NAME=NUMBER"),
    (["--expr", "a", "--values", "a=1,a=2"], "given twice"),
    (["--expr", "2*3"], "no variables"),
    (["--values", "a=1"], "needs an --expr"),
])
def test_explain_rejects_bad_input_with_status_2(args, message):
    result = run("explain", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "hi\n" not in result.output  # nothing was executed


def test_explain_help_has_examples():
    result = run("explain", "--help")
    assert result.exit_code == 0
    assert "chainrule explain --expr" in result.output


# --------------------------------------------------------------------------- graph
def test_graph_writes_dot_text(tmp_path):
    result = run("graph", "-o", str(tmp_path / "shop.dot"))
    assert result.exit_code == 0, result.output
    dot = (tmp_path / "shop.dot").read_text(encoding="utf-8")
    assert "digraph chainrule" in dot and "value 715" in dot and "← 650" in dot


def test_graph_prints_dot_for_an_expression():
    result = run("graph", "--expr", "x*y", "--values", "x=3,y=4", "-o", "-")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("digraph chainrule")
    assert "value 12" in result.output and "grad 4" in result.output


def test_graph_without_graphviz_falls_back_to_dot(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    result = run("graph", "-o", str(tmp_path / "graph.svg"))
    assert result.exit_code == 1, result.output  # the picture asked for was not drawn
    assert (tmp_path / "graph.dot").exists() and not (tmp_path / "graph.svg").exists()
    assert "apt install graphviz" in result.output and "Traceback" not in result.output
    (tmp_path / "graph.dot").unlink()
    strict = run("graph", "-o", str(tmp_path / "graph.svg"), "--strict")
    assert strict.exit_code == 1 and "apt install graphviz" in strict.output
    assert not (tmp_path / "graph.dot").exists()


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_graph_draws_svg(tmp_path):
    result = run("graph", "-o", str(tmp_path / "graph.svg"))
    assert result.exit_code == 0, result.output
    assert "<svg" in (tmp_path / "graph.svg").read_text(encoding="utf-8")


def test_graph_of_the_two_layer_net(tmp_path):
    pytest.importorskip("chainrule.nn")
    result = run("graph", "--model", "two-layer", "-o", "-")
    assert result.exit_code == 0, result.output
    assert "Linear 784→50" in result.output and "Linear 50→10" in result.output


@pytest.mark.parametrize("args, message", [
    (["--model", "two-layer", "--expr", "a", "--values", "a=1"], "not both"),
    (["--model", "resnet"], "Invalid value for '--model'"),
    (["-o", "graph.jpeg"], "cannot tell the format"),
    (["--expr", "a +* b", "--values", "a=1,b=2"], "not a valid expression"),
])
def test_graph_rejects_bad_input_with_status_2(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("graph", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output


@pytest.mark.parametrize("expr, said", [("~a", "'~' (bitwise not) is not supported"),
                                        ("not a", "'not' is not supported"),
                                        ("a % b", "'%' (remainder) is not supported"),
                                        ("a ^ b", "for a power use **"),
                                        ("a @ b", "'@' (matrix product)")])
def test_unsupported_operators_are_named_as_typed(expr, said):
    result = CliRunner().invoke(main, ["explain", "--expr", expr, "--values", "a=1,b=2"])
    assert result.exit_code == 2, result.output
    assert said in result.output
    for class_name in ("Invert", "Not", "Mod", "BitXor", "MatMult"):
        assert class_name not in result.output


@pytest.mark.parametrize("expr, values, output", [
    ("result*2", "result=3", "f"),
    ("f*result + 1", "f=2,result=3", "output"),
    ("f*result*output + f_1", "f=2,result=3,output=1,f_1=2", "f_2"),
])
def test_a_variable_named_like_the_output_works(expr, values, output):
    """The output takes the first of f, result, output, f_1, ... that no variable has,
    so a variable and the output never share a row's name."""
    result = run("explain", "--expr", expr, "--values", values)
    assert result.exit_code == 0, result.output
    assert f"Forward pass: {output} = " in result.output
    summary = result.output.split("Gradients of the leaves")[1]
    for name in (part.split("=")[0] for part in values.split(",")):
        assert f"d {output}/d {name} " in summary, summary
    graph = run("graph", "--expr", expr, "--values", values, "-o", "-")
    assert graph.exit_code == 0, graph.output
    labels = re.findall(r'label="([^"\\]*)\\n', graph.output)
    assert len(labels) == len(set(labels)), labels  # no two boxes named alike


def test_a_variable_named_like_an_intermediate_result_is_refused():
    result = run("explain", "--expr", "mul_1*2*x", "--values", "mul_1=2,x=3")
    assert result.exit_code == 2, result.output
    assert "'mul_1' is the name chainrule gives an intermediate result" in result.output
    assert "rename the variable" in result.output and "Traceback" not in result.output
    assert run("explain", "--expr", "mul_9*2", "--values", "mul_9=2").exit_code == 0
