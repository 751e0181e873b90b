"""The ``chainrule`` command line (also ``python -m chainrule``).

Only this package parses arguments and prints for people; each subcommand lives in
its own module and calls into the library.
"""

from __future__ import annotations

import importlib
import logging
import os

import click

from chainrule.cli._types import ThreadCount

# subcommand modules, each defining a click command named ``command``
_COMMANDS = [
    "train",
    "explain",
    "graph",
    "gradcheck",
    "eval",
    "generate",
    "experiment",
    "export",
]


#: Set to 1 to see the Python traceback of an unexpected error instead of one line.
DEBUG_VARIABLE = "CHAINRULE_DEBUG"


class _Commands(click.Group):
    """The command group, with a last safety net: an exception that no subcommand turned
    into a clear message becomes one line on stderr and exit status 1 (an environment
    failure, or a bug), never a traceback; ``CHAINRULE_DEBUG=1`` lets it through."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as error:
            if os.environ.get(DEBUG_VARIABLE, "") not in ("", "0"):
                raise
            raise click.ClickException(_one_line(error)) from None


def _one_line(error: BaseException) -> str:
    """``error`` as one line: a file-system failure as its reason, anything else with its
    type and a pointer to the traceback."""
    first = (str(error).strip().splitlines() or [""])[0]
    if isinstance(error, OSError):
        return first or type(error).__name__
    return (f"unexpected {type(error).__name__}" + (f": {first}" if first else "")
            + f" (run again with {DEBUG_VARIABLE}=1 to see where)")


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="chainrule")
@click.option("--threads", type=ThreadCount(), default="1", show_default=True,
              metavar="N|auto",
              help="Threads to compute with, for every subcommand (give it before the "
                   "subcommand): convolutions share their bands among them, matrix "
                   "products use as many BLAS threads. One by default: the models here "
                   "are small, and on a busy 2-core machine two threads trained them 6 to "
                   "30 times slower than one. 0 or 'auto' leaves BLAS's own default (all "
                   "cores) and shares nothing.")
@click.pass_context
def main(ctx: click.Context, threads: int | None) -> None:
    """chainrule: see backpropagation at work, then train real networks.

    \b
    Examples:
      chainrule train                       # two-layer net on the built-in digits
      chainrule train --dataset mnist --data-dir ~/data/mnist --epochs 17
      chainrule --threads 4 train --dataset mnist   # compute with 4 threads
    """
    from chainrule.threads import num_threads

    # restored when the command ends (a process that runs several, as the tests do)
    ctx.with_resource(num_threads(threads))
    # what the library reports (downloads) goes to stderr, prefixed; once per process
    library_log = logging.getLogger("chainrule")
    if not library_log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("chainrule: %(message)s"))
        library_log.addHandler(handler)
        library_log.setLevel(logging.INFO)


for _name in _COMMANDS:
    main.add_command(importlib.import_module(f"chainrule.cli.{_name}").command)
