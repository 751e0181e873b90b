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


def data_folder() -> click.Path:
    """``--data-dir``: a folder that exists (a typo is told as such, not as a dataset
    missing from three folders)."""
    return click.Path(exists=True, file_okay=False)


def data_error(error: Exception) -> click.ClickException:
    """A dataset that is missing or corrupt (or another data file problem), reported in
    the command line's words (``--data-dir``, ``$CHAINRULE_DATA``): exit status 1."""
    return click.ClickException(getattr(error, "for_command_line", None) or str(error))


class ThreadCount(click.ParamType):
    """``--threads``: a whole number of threads, at least 1, or ``0``/``auto`` for
    BLAS's own default (returned as ``None``)."""

    name = "threads"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        if value is None or isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif str(value).strip().lower() == "auto":
            return None
        else:
            try:
                number = int(str(value).strip())
            except ValueError:
                self.fail(f"{value!r} is not a number of threads; give a whole number "
                          "(1 or more), or 0 or 'auto' for BLAS's own default", param, ctx)
        if number is not None and number < 0:
            self.fail(f"{value!r} is negative; give a whole number of threads (1 or more), "
                      "or 0 or 'auto' for BLAS's own default", param, ctx)
        return number or None
