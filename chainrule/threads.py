"""How many threads the BLAS library under NumPy may use.

The models here are small: a matrix product is microseconds of work, and on a busy
machine a second BLAS thread mostly waits for a core. Measured on a 2-core machine
shared with other jobs, two OpenBLAS threads trained the small models 6 to 30 times
slower than one; so the command line runs one thread per process unless asked.
Environment variables (``OPENBLAS_NUM_THREADS``) are read once, when NumPy loads
BLAS, which is too late for a library already imported; ``threadpoolctl`` changes the
limit of the loaded library at any time. It is imported only when a limit is set, so
``import chainrule`` stays light.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


def _checked(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of threads must be a positive int, got {n!r}")
    return n


def set_num_threads(n: int) -> None:
    """Let NumPy's BLAS use at most ``n`` threads from now on (for the whole process)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=_checked(n), user_api="blas")


def get_num_threads() -> int | None:
    """The most threads any loaded BLAS library may use now (``None`` when NumPy's
    BLAS does not report it)."""
    import numpy  # noqa: F401  (BLAS is loaded with NumPy; only a loaded one reports)
    from threadpoolctl import threadpool_info

    counts = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    return max(counts) if counts else None


@contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """Within the ``with`` block, BLAS uses at most ``n`` threads; the limit before is
    restored after it. ``None`` (or 0) leaves BLAS's own default.

    >>> from chainrule import num_threads
    >>> with num_threads(1):
    ...     pass
    """
    if n is None or n == 0:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=_checked(n), user_api="blas"):
        yield
