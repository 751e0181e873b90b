"""How many threads chainrule computes with.

``n`` threads: NumPy's BLAS may use ``n`` threads, as in any NumPy program, and
chainrule's convolutions split their band loops into ``n`` shares that run at once,
with one BLAS thread inside each (``chainrule/ops/_parallel.py``). Leaving the
convolutions to BLAS alone was slower than one thread: their products are small, and
OpenBLAS's idle threads spin between calls, taking the cores from the next operation;
so for a moment after each band loop chainrule's own products keep BLAS at one thread
too.

The models are small: on a busy machine a second thread mostly waits for a core.
Measured on a 2-core machine shared with other jobs, two threads trained the small
models 6 to 30 times slower than one; so the command line runs one thread per process
unless asked. Environment variables (``OPENBLAS_NUM_THREADS``) are read once, when
NumPy loads BLAS, which is too late for a library already imported; ``threadpoolctl``
changes the limit of the loaded library at any time. It is imported only when a limit
is set, so ``import chainrule`` stays light.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from chainrule.ops import _parallel


def _checked(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of threads must be a positive int, got {n!r}")
    return n


def _configure(n: int) -> None:
    """Split chainrule's work among ``n`` threads (``ops/_parallel.py``), telling it
    how to set BLAS's threads for a product."""
    from threadpoolctl import ThreadpoolController

    blas = ThreadpoolController().select(user_api="blas").lib_controllers

    def set_blas_threads(count: int) -> None:
        for library in blas:
            library.set_num_threads(count)

    _parallel.configure(n, set_blas_threads)


def set_num_threads(n: int) -> None:
    """Compute with ``n`` threads from now on (for the whole process): BLAS may use
    ``n``, and chainrule's convolutions split among ``n`` threads with one BLAS thread
    in each (see ``chainrule/ops/_parallel.py``)."""
    from threadpoolctl import threadpool_limits

    _configure(_checked(n))
    threadpool_limits(limits=n, user_api="blas")


def get_num_threads() -> int | None:
    """How many threads chainrule computes with now: those set by ``set_num_threads``
    or ``num_threads``, else the most threads any loaded BLAS library may use
    (``None`` when NumPy's BLAS does not report it)."""
    if _parallel.workers() > 1:
        return _parallel.workers()
    import numpy  # noqa: F401  (BLAS is loaded with NumPy; only a loaded one reports)
    from threadpoolctl import threadpool_info

    counts = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    return max(counts) if counts else None


@contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """Within the ``with`` block, compute with ``n`` threads (see ``set_num_threads``);
    the setting before is restored after it. ``None`` (or 0) leaves BLAS's own default
    and splits nothing.

    >>> from chainrule import num_threads
    >>> with num_threads(1):
    ...     pass
    """
    if n is None or n == 0:
        yield
        return
    from threadpoolctl import threadpool_limits

    before = _parallel.workers()
    with threadpool_limits(limits=_checked(n), user_api="blas"):
        _configure(n)
        try:
            yield
        finally:
            _configure(before)
