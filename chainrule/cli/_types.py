"""Option types shared by the subcommands."""

from __future__ import annotations

import math
from typing import Any

import click


class FiniteFloatRange(click.FloatRange):
    """A ``click.FloatRange`` that also refuses ``nan`` and ``inf``: NaN compares false
    with every bound, so a plain range lets it through (``--lr nan`` would train on
    nothing, ``--dropout nan`` would be written into config.json)."""

    name = "finite float range"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number; give one in the range "
                      f"{self._describe_range()}", param, ctx)
        return super().convert(number, param, ctx)


def positive_float() -> FiniteFloatRange:
    """A finite number above 0."""
    return FiniteFloatRange(min=0, min_open=True)
