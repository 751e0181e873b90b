"""One progress bar for all long work (training, experiments, gradient checks,
evaluation, downloading and parsing datasets): tqdm on stderr when it is a terminal,
nothing when it is piped.

``showing_progress(True/False)`` forces it on or off for everything run inside it (the
command line's ``--progress/--no-progress``), so that work nested deep in a library
call (an experiment's many training runs) needs no argument threaded through.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_FORCED: ContextVar[bool | None] = ContextVar("chainrule_progress", default=None)


@contextmanager
def showing_progress(enabled: bool | None) -> Iterator[None]:
    """Within the block, bars show (True), never show (False) or show on a terminal
    only (None)."""
    token = _FORCED.set(enabled)
    try:
        yield
    finally:
        _FORCED.reset(token)


def progress_enabled(enabled: bool | None = None) -> bool:
    """Whether a bar should show: ``enabled`` if given, else what ``showing_progress``
    says, else whether stderr is a terminal."""
    if enabled is None:
        enabled = _FORCED.get()
    return sys.stderr.isatty() if enabled is None else bool(enabled)


class _NoBar:
    """What ``progress_bar`` gives when no bar shows: the calls a bar takes, doing nothing."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def progress_bar(total: int | None, desc: str, unit: str = "it",
                 enabled: bool | None = None, unit_scale: bool = False) -> Any:
    """A tqdm bar on stderr (closed with ``close()`` or a ``with`` block), or one that
    does nothing when progress is off (see ``progress_enabled``). ``unit_scale`` counts
    in thousands and millions of ``unit`` (kB, MB of a download counted in bytes)."""
    if not progress_enabled(enabled):
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True,
                file=sys.stderr, unit_scale=unit_scale)
