"""Work shared among threads: the convolutions' bands, and matrix products.

NumPy runs each operation on one core; only its BLAS multiplies with several threads.
That is a poor fit for convolutional networks on a few cores:

* a convolution here is a loop over cache-sized bands of output rows, each an im2col
  copy (one core) and a small product, too small for BLAS to split well: with two
  BLAS threads a DeepConvNet step was slower than with one;
* after each multi-threaded call, OpenBLAS's idle threads spin for about 0.1 s
  waiting for more work, taking the cores from whatever runs next (on 2 cores a
  banded convolution took 7 ms, and 15 ms right after one small two-thread product).

So with ``n`` threads (``chainrule.set_num_threads(n)`` / ``chainrule.num_threads(n)``
configure this module) chainrule shares out its own work:

* ``split``: each of ``n`` threads takes a contiguous share of a convolution's bands,
  BLAS set to one thread inside each (NumPy releases the GIL for its copies and
  products, so the shares run at once);
* ``over_channels``: a pass over a large (N, C, ...) array (ReLU, pooling, col2im, a
  convolution's zero padding) in shares of its channels;
* ``matmul``: a product gets BLAS's ``n`` threads, which suit a stream of small
  products best (an MLP's), except within ``SPIN_SECONDS`` of a split loop (a network
  with convolutions), where waking BLAS's threads would slow the next loop: there a
  large product is split like the bands, and a smaller one runs on one thread.

With one thread everything runs in the calling thread, as plain NumPy would. A
convolution's forward pass and input gradient are then the same bit for bit on any
number of threads (each band is computed alike, only elsewhere); its weight gradient
(the shares' partial sums added in another order) and a split product (BLAS blocks
a part of a matrix differently from the whole) differ in the last bits, as products
on BLAS's own threads do. This module imports only the standard library and NumPy.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")

# A product worth splitting among Python threads: below about this many multiply-adds
# (about 1 ms of one core's work) handing out the shares costs more than it saves.
SPLIT_MACS = 1 << 25
# OpenBLAS multiplies with one thread below 2^18 multiply-adds whatever its setting
# (its GEMM_MULTITHREAD_THRESHOLD), so smaller products need no change of setting
BLAS_THREADS_MACS = 1 << 18
SPIN_SECONDS = 0.2  # after a split loop, products keep BLAS's threads asleep this long
# An elementwise pass over fewer elements stays in one thread. Alone, a pass gains
# from two threads only from about 0.5 M float32 values (on 2 cores, ReLU of 1.25 M
# values took 1.28 ms on one thread and 0.81 on two; of 0.31 M, 0.24 and 0.28); in a
# DeepConvNet step, sharing from 2^17 values on was 4-6 % faster than not sharing
# and no slower than from 2^15, 2^16, 2^18 or 2^19 (paired, interleaved; a helper
# thread kept busy also wakes faster for the next convolution).
SPLIT_ELEMENTS = 1 << 17

_workers = 1
_set_blas_threads: Callable[[int], None] | None = None
_blas_now: int | None = None  # BLAS's threads as last set here (None: not known)
_pool: ThreadPoolExecutor | None = None
_last_split = -float("inf")  # time.monotonic() at the end of the latest split loop
_local = threading.local()  # .inside: this thread runs a share already (never nest)


def workers() -> int:
    """How many threads chainrule's work is shared among now."""
    return _workers


def configure(workers: int, set_blas_threads: Callable[[int], None] | None = None) -> None:
    """Share work among ``workers`` threads from now on (BLAS's limit should be
    ``workers`` too); ``set_blas_threads(count)`` sets BLAS's threads (``chainrule.threads``
    passes one; without it BLAS is left alone)."""
    global _workers, _set_blas_threads, _blas_now
    _workers, _set_blas_threads = max(1, int(workers)), set_blas_threads
    _blas_now = None


def _threads() -> ThreadPoolExecutor:
    """The pool of ``_workers - 1`` helper threads (made when first needed, again when
    more are asked for, and after a fork, whose child has none of its threads)."""
    global _pool
    if _pool is None or _pool._max_workers < _workers - 1:
        _pool = ThreadPoolExecutor(_workers - 1, thread_name_prefix="chainrule",
                                   initializer=_mark_inside)
    return _pool


def _forget_threads() -> None:
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_threads)


def _blas_threads(count: int) -> None:
    """Set BLAS's threads when they change (left set between calls, OpenBLAS's threads
    stay warm for an MLP's next product)."""
    global _blas_now
    if count != _blas_now and _set_blas_threads is not None:
        _set_blas_threads(count)
        _blas_now = count


def _mark_inside() -> None:
    _local.inside = True


def split(items: Sequence[T], work: Callable[[Sequence[T]], R]) -> list[R]:
    """``work`` applied to contiguous shares of ``items``, one share per thread (the
    first in the calling thread); the results in order. With one thread, fewer than two
    items, or called from a share: ``[work(items)]``."""
    global _last_split
    count = min(_workers, len(items))
    if count < 2 or getattr(_local, "inside", False):
        return [work(items)]
    pool = _threads()
    bounds = [len(items) * k // count for k in range(count + 1)]
    shares = [items[a:b] for a, b in zip(bounds, bounds[1:])]
    _blas_threads(1)
    futures = [pool.submit(work, share) for share in shares[1:]]
    try:
        first = work(shares[0])
    finally:  # the other shares may write into shared arrays: always wait for them
        errors = [future.exception() for future in futures]
        _last_split = time.monotonic()
    for error in errors:
        if error is not None:
            raise error
    return [first] + [future.result() for future in futures]


def over_channels(shape: tuple[int, ...], work: Callable[[Any], object]) -> None:
    """``work(index)`` for indices ``(slice(None), s)`` whose slices ``s`` of axis 1 (the
    channels of (N, C, ...) images) together cover it, one per thread, when the array
    of ``shape`` is large enough; otherwise ``work(...)`` once (the whole array)."""
    if _workers < 2 or len(shape) < 2 or math.prod(shape) < SPLIT_ELEMENTS:
        work(...)
        return
    split(range(shape[1]), lambda share: work((slice(None), slice(share[0], share[-1] + 1))))


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` with the threads: BLAS's, or, within ``SPIN_SECONDS`` of a split band
    loop, for a product of at least ``SPLIT_MACS``, shares of it split like the bands:
    by the rows of ``a`` when ``a`` is the larger operand, else by the columns of
    ``b``. (BLAS copies each operand into its own blocked layout first: the larger one
    is then copied once in parts, the smaller one by every thread; splitting the rows
    of a 100×784 batch for a 784×256 weight saved 7 %, its columns 30 %.)"""
    if _workers < 2 or a.ndim != 2 or b.ndim != 2:
        return a @ b
    macs = a.shape[0] * a.shape[1] * b.shape[1]
    if macs < BLAS_THREADS_MACS:
        return a @ b
    if time.monotonic() - _last_split > SPIN_SECONDS:
        _blas_threads(_workers)
        return a @ b
    if macs < SPLIT_MACS:
        return a @ b
    out = np.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))
    if a.size >= b.size:
        def rows(share: Sequence[int]) -> None:
            np.matmul(a[share[0]:share[-1] + 1], b, out=out[share[0]:share[-1] + 1])

        split(range(a.shape[0]), rows)
    else:
        def columns(share: Sequence[int]) -> None:
            np.matmul(a, b[:, share[0]:share[-1] + 1], out=out[:, share[0]:share[-1] + 1])

        split(range(b.shape[1]), columns)
    return out
