"""``chainrule explain``: backpropagation step by step, for the shopping example or for
a scalar expression of your own.

Expressions are parsed with ``ast`` and only numbers, names, ``+ - * / **``, unary
minus, parentheses and a few functions are accepted: nothing is ever ``eval``-ed.
``chainrule graph`` (``cli/graph.py``) takes the same ``--expr``/``--values``.
"""

from __future__ import annotations

import ast
import itertools
import math
from collections.abc import Callable
from typing import Any

import click
import numpy as np

import chainrule.functional as F
from chainrule.explain import explain, reset_labels, shopping_example, snapshot
from chainrule.tensor import Tensor

# The functions an expression may call, each with one argument.
FUNCTIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "exp": F.exp, "log": F.log, "sqrt": F.sqrt, "tanh": F.tanh, "sigmoid": F.sigmoid,
    "relu": F.relu, "sin": F.sin, "cos": F.cos, "abs": F.abs,
}
_BINARY: dict[type, Callable[[Any, Any], Tensor]] = {
    ast.Add: F.add, ast.Sub: F.sub, ast.Mult: F.mul, ast.Div: F.div, ast.Pow: F.pow,
}
_ALLOWED = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Call,
            ast.Load, ast.USub, ast.UAdd, *_BINARY)
_GRAMMAR = ("numbers, names, + - * / **, unary minus, parentheses and the functions "
            + ", ".join(FUNCTIONS))
#: How an operator the grammar lacks is named to the user (its AST node has no text).
_OPERATOR_NAMES: dict[type, str] = {
    ast.Invert: "'~' (bitwise not)", ast.Not: "'not'", ast.And: "'and'", ast.Or: "'or'",
    ast.MatMult: "'@' (matrix product)", ast.Mod: "'%' (remainder)",
    ast.FloorDiv: "'//' (floor division)", ast.BitAnd: "'&' (bitwise and)",
    ast.BitOr: "'|' (bitwise or)", ast.BitXor: "'^' (bitwise xor; for a power use **)",
    ast.LShift: "'<<'", ast.RShift: "'>>'", ast.Eq: "'=='", ast.NotEq: "'!='",
    ast.Lt: "'<'", ast.LtE: "'<='", ast.Gt: "'>'", ast.GtE: "'>='", ast.Is: "'is'",
    ast.IsNot: "'is not'", ast.In: "'in'", ast.NotIn: "'not in'",
}
MAX_LENGTH = 1000
#: What the expression's value is called in the trace: the first of these that is not
#: one of its variables (then f_1, f_2, ...).
OUTPUT_NAMES = ("f", "result", "output")
#: How deeply operations may nest (``-(-(-a))`` is 3 deep): the evaluation, the trace
#: and the drawing all recurse through the graph.
MAX_DEPTH = 600


def _depth(tree: ast.AST) -> int:
    """The nesting depth of ``tree``, counted without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _shown(text: str, limit: int = 60) -> str:
    """``text`` quoted, cut short when long (error messages stay one readable line)."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} " \
        "characters)"


def parse_values(text: str | None) -> dict[str, float]:
    """``"a=100,b=2"`` -> ``{"a": 100.0, "b": 2.0}``."""
    values: dict[str, float] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, number = (s.strip() for s in part.partition("="))
        if not sep or not name.isidentifier():
            raise click.BadParameter(f"{part.strip()!r} is not NAME=NUMBER (write e.g. "
                                     "a=100,b=2)", param_hint="--values")
        if name in values:
            raise click.BadParameter(f"{name} is given twice", param_hint="--values")
        try:
            values[name] = float(number)
        except ValueError:
            raise click.BadParameter(f"{number!r} (the value of {name}) is not a number",
                                     param_hint="--values") from None
    return values


def _check(tree: ast.Expression, text: str) -> set[str]:
    """Reject anything but the small expression grammar; return the variable names."""
    names: set[str] = set()
    functions: set[int] = set()  # the Name nodes that are called, not variables
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            if type(node) in _OPERATOR_NAMES:
                raise click.UsageError(f"--expr: {_OPERATOR_NAMES[type(node)]} is not "
                                       f"supported; use only {_GRAMMAR}")
            piece = ast.get_source_segment(text, node) or type(node).__name__
            raise click.UsageError(f"--expr: {piece!r} is not allowed; use only {_GRAMMAR}")
        if isinstance(node, ast.Constant) and type(node.value) not in (int, float):
            raise click.UsageError(f"--expr: {node.value!r} is not a number; use only "
                                   f"{_GRAMMAR}")
        if isinstance(node, ast.Constant) and not _fits_float(node.value):
            raise click.UsageError(f"--expr: the number {_shown(str(node.value))} is too "
                                   "large; numbers must fit a float64 (below about 1.8e308)")
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else None
            if name not in FUNCTIONS or node.keywords or len(node.args) != 1:
                piece = ast.get_source_segment(text, node)
                raise click.UsageError(f"--expr: {piece!r} is not allowed; the functions "
                                       f"are {', '.join(FUNCTIONS)}, each with one argument")
            functions.add(id(node.func))
        if isinstance(node, ast.Name) and id(node) not in functions:
            names.add(node.id)
    return names


def _fits_float(value: float) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an int beyond float64's range
        return False


def _evaluate(node: ast.AST, variables: dict[str, Tensor]) -> Tensor:
    """The value of a checked expression, built from chainrule operations (so that it
    is recorded as a graph); numbers become float64 constants."""
    if isinstance(node, ast.Constant):
        return Tensor(float(node.value), dtype=np.float64)
    if isinstance(node, ast.Name):
        return variables[node.id]
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, variables)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.Call):
        return FUNCTIONS[node.func.id](_evaluate(node.args[0], variables))  # type: ignore
    assert isinstance(node, ast.BinOp)
    left = _evaluate(node.left, variables)
    if isinstance(node.op, ast.Pow) and isinstance(node.right, ast.Constant):
        return F.pow(left, float(node.right.value))  # x ** 2: the constant-exponent rule
    return _BINARY[type(node.op)](left, _evaluate(node.right, variables))


def build_expression(text: str, values: dict[str, float]) -> Tensor:
    """The scalar expression ``text`` (e.g. ``"(a*b + c*d)*t"``) computed from
    ``values``, each variable a named float64 leaf that requires grad. Problems are
    reported as click usage errors (exit status 2)."""
    if len(text) > MAX_LENGTH:
        raise click.UsageError(f"--expr is {len(text)} characters long; at most "
                               f"{MAX_LENGTH} are accepted")
    too_deep = f"--expr is nested too deeply; at most {MAX_DEPTH} levels are accepted"
    try:
        tree = ast.parse(text.strip(), mode="eval")
        if _depth(tree) > MAX_DEPTH:
            raise click.UsageError(too_deep)
        names = _check(tree, text.strip())
    except SyntaxError as error:
        raise click.UsageError(f"--expr {_shown(text)} is not a valid expression "
                               f"({error.msg}); use only {_GRAMMAR}") from None
    except (RecursionError, MemoryError):
        raise click.UsageError(too_deep) from None
    if not names:
        raise click.UsageError("--expr has no variables to differentiate: use names such "
                               "as a and b and give their --values")
    missing = sorted(names - set(values))
    if missing:
        raise click.BadParameter(f"no value for {', '.join(missing)}: add "
                                 + ",".join(f"{n}=NUMBER" for n in missing),
                                 param_hint="--values")
    unused = sorted(set(values) - names)
    if unused:
        raise click.BadParameter(f"{', '.join(unused)} not used in --expr {text!r}",
                                 param_hint="--values")
    variables = {name: Tensor(values[name], requires_grad=True, dtype=np.float64, name=name)
                 for name in sorted(names)}
    with np.errstate(all="ignore"):  # log(-1) is nan, 1/0 is inf: shown, not warned about
        result = _evaluate(tree.body, variables)
    if result.creator is not None:
        result.name = _output_name(names)
        _refuse_names_of_intermediates(result, names)
    return result


def _output_name(names: set[str]) -> str:
    """The first of ``OUTPUT_NAMES`` (then ``f_1``, ``f_2``, ...) that no variable has, so
    that the output and a variable never share a name in the trace."""
    numbered = (f"f_{number}" for number in itertools.count(1))
    return next(n for n in itertools.chain(OUTPUT_NAMES, numbered) if n not in names)


def _refuse_names_of_intermediates(result: Tensor, names: set[str]) -> None:
    """A variable called like the automatic name of an intermediate result (``mul_1``)
    would make two rows of the trace read the same: refuse it, saying why. The names are
    given here, in the order ``explain`` gives them, and kept for it."""
    nodes, _ = snapshot(result)
    for node in nodes:
        if node.kind == "op" and node.label in names:
            raise click.BadParameter(
                f"{node.label!r} is the name chainrule gives an intermediate result "
                f"(here {node.expression}), so it cannot also name a variable; rename "
                f"the variable (e.g. {node.label.replace('_', '')})", param_hint="--expr")


def expression_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--expr`` and ``--values``, shared by ``chainrule explain`` and ``chainrule graph``."""
    command = click.option(
        "--values", "values_text", metavar="NAME=NUMBER,...",
        help="Values of the variables in --expr, e.g. a=100,b=2,t=1.1.")(command)
    return click.option(
        "--expr", metavar="EXPRESSION",
        help=f"A scalar expression of your own instead of the shopping example; it may "
             f"use {_GRAMMAR}.")(command)


def expression_or_example(expr: str | None, values_text: str | None) -> Tensor:
    """The output to explain or draw: ``--expr`` with ``--values``, else the shopping
    example."""
    reset_labels()  # automatic names restart at 1 for each command
    if expr is None:
        if values_text:
            raise click.UsageError("--values needs an --expr to give values to")
        return shopping_example()
    return build_expression(expr, parse_values(values_text))


@click.command("explain")
@expression_options
@click.option("--markdown", is_flag=True, help="Print Markdown tables instead of text.")
def command(expr: str | None, values_text: str | None, markdown: bool) -> None:
    """Show backpropagation step by step: the forward values, then every node of the
    backward pass with the gradient it receives, its local derivative and what it
    sends to its inputs.

    Without options: the shopping example (2 apples at 100, 3 oranges at 150, 10 % tax).

    \b
    Examples:
      chainrule explain
      chainrule explain --markdown > backprop.md
      chainrule explain --expr "(a*b + c*d)*t" --values a=100,b=2,c=150,d=3,t=1.1
      chainrule explain --expr "x*x + x" --values x=3          # x used twice
      chainrule explain --expr "sigmoid(w*x + b)" --values w=0.5,x=2,b=-1
    """
    output = expression_or_example(expr, values_text)
    if expr is None:
        intro = "The shopping example: 2 apples at 100, 3 oranges at 150, 10 % tax."
        click.echo(f"**{intro}**\n" if markdown else intro + "\n")
    with np.errstate(all="ignore"):
        trace = explain(output)
    click.echo(trace.to_markdown() if markdown else trace.to_text())
