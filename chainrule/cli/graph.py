"""``chainrule graph``: draw a computational graph (the shopping example, an expression of
your own, or a model with one box per layer) with Graphviz, or write its DOT text."""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path

import click
import numpy as np

from chainrule.cli.explain import expression_options, expression_or_example
from chainrule.explain import Trace, explain
from chainrule.viz import (
    Graph,
    GraphvizMissingWarning,
    GraphvizNotFoundError,
    missing_dot_message,
    model_graph,
    render,
    to_dot,
)

MODELS = ("two-layer",)
#: The most nodes drawn as a picture: Graphviz lays out a few hundred labelled nodes
#: in minutes, not seconds (a 500-term sum ran past its 120 s limit). The DOT text of
#: any size is still written with -o FILE.dot or -o -.
MAX_DRAWN_NODES = 150
_PICTURES = (".svg", ".png", ".pdf")


def _model(name: str) -> Graph:
    """The graph of a ready-made model, one box per layer, for one MNIST-sized sample."""
    try:
        from chainrule.nn import TwoLayerNet
    except ImportError:
        raise click.UsageError(f"--model {name} needs chainrule.nn.TwoLayerNet, which this "
                               "installation does not have") from None
    return model_graph(TwoLayerNet(784, 50, 10, seed=0), np.zeros((1, 784), np.float32))


@click.command("graph")
@expression_options
@click.option("--model", type=click.Choice(MODELS),
              help="Draw a network instead, one box per layer (two-layer: 784-50-10).")
@click.option("-o", "--output", default="graph.svg", show_default=True, metavar="FILE",
              help="Where to draw: .svg, .png or .pdf (needs Graphviz), .dot or .gv (DOT "
                   "text), or - to print the DOT text.")
@click.option("--strict", is_flag=True,
              help="Write no .dot file either when Graphviz's dot program is missing "
                   "(the command fails with exit status 1 either way).")
def command(expr: str | None, values_text: str | None, model: str | None, output: str,
            strict: bool) -> None:
    """Draw a computational graph: forward values in the boxes, the gradients of the
    backward pass in red along the edges.

    Graphviz (the `dot` program, a system package: apt install graphviz, brew install
    graphviz) draws the picture. Without it the DOT text is written next to the
    requested file (graph.dot), you are told how to install Graphviz, and the command
    exits with status 1, since the picture asked for was not drawn.

    \b
    Examples:
      chainrule graph                                  # the shopping example -> graph.svg
      chainrule graph -o shopping.png
      chainrule graph --expr "(a*b + c*d)*t" --values a=100,b=2,c=150,d=3,t=1.1
      chainrule graph --model two-layer -o net.svg     # Linear 784→50, ReLU, Linear 50→10
      chainrule graph -o - | dot -Tpng > graph.png     # DOT text on stdout
    """
    if model is not None:
        if expr is not None or values_text:
            raise click.UsageError("give either --model or --expr/--values, not both")
        picture: Graph | Trace = _model(model)
    else:
        with np.errstate(all="ignore"):
            picture = explain(expression_or_example(expr, values_text))
    if output == "-":
        click.echo(to_dot(picture), nl=False)
        return
    folder = Path(output).parent
    if not folder.is_dir():
        raise click.BadParameter(f"the folder {str(folder)!r} of {output!r} does not exist; "
                                 "create it first or write into an existing folder",
                                 param_hint="--output")
    if isinstance(picture, Trace) and Path(output).suffix.lower() in _PICTURES \
            and len(picture.nodes) > MAX_DRAWN_NODES:
        raise click.UsageError(
            f"the graph of --expr has {len(picture.nodes)} nodes; at most "
            f"{MAX_DRAWN_NODES} are drawn as a picture (Graphviz would take minutes). "
            f"Write its DOT text instead (-o {Path(output).with_suffix('.dot').name} or "
            "-o -), or see every step with `chainrule explain`")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GraphvizMissingWarning)  # said below instead
            written = render(picture, output, strict=strict)
    except GraphvizNotFoundError as error:
        raise click.ClickException(str(error)) from None
    except ValueError as error:  # an unknown suffix
        raise click.BadParameter(str(error), param_hint="--output") from None
    except subprocess.TimeoutExpired as error:
        raise click.ClickException(f"Graphviz's dot did not finish drawing {output} in "
                                   f"{error.timeout:g} s; write the DOT text instead "
                                   "(-o graph.dot)") from None
    except RuntimeError as error:  # dot itself failed
        raise click.ClickException(str(error).splitlines()[0]) from None
    if written != Path(output):  # no picture: an environment failure, exit status 1
        raise click.ClickException(missing_dot_message(output, written))
    click.echo(f"wrote {written}")
