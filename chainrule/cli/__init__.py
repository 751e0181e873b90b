"""The ``chainrule`` command line (also ``python -m chainrule``).

Only this package parses arguments and prints for people; each subcommand lives in
its own module and calls into the library.
"""

from __future__ import annotations

import importlib
import logging

import click

# subcommand modules, each defining a click command named ``command``
_COMMANDS = [
    "train",
    "explain",
    "graph",
    "gradcheck",
    "eval",
    "generate",
    "experiment",
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="chainrule")
def main() -> None:
    """chainrule: see backpropagation at work, then train real networks.

    \b
    Examples:
      chainrule train                       # two-layer net on the built-in digits
      chainrule train --dataset mnist --data-dir ~/data/mnist --epochs 17
    """
    # what the library reports (downloads) goes to stderr, prefixed; once per process
    library_log = logging.getLogger("chainrule")
    if not library_log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("chainrule: %(message)s"))
        library_log.addHandler(handler)
        library_log.setLevel(logging.INFO)


for _name in _COMMANDS:
    main.add_command(importlib.import_module(f"chainrule.cli.{_name}").command)
