"""Scratch buffers: large temporaries that the convolutions reuse from step to step.

A training step makes the same temporaries of the same shapes every time. Allocating
them anew costs more than their arithmetic: glibc returns big freed blocks to the
kernel, and touching a fresh block page-faults once per 4 KiB page (about 7,000
faults, a fifth of a DeepConvNet step, before this cache). A buffer kept here is
touched once and then reused, so a step runs without page faults and without asking
the whole process to change its allocator.

Rules that make the reuse safe:

* a buffer never leaves the operation that asked for it: results are new arrays;
* one operation finishes with its buffers before another one asks (operations do not
  call each other while holding one), and each thread has its own cache;
* the cache is bounded (``LIMIT_BYTES``): a request that would exceed it empties the
  cache first; ``release_scratch()`` empties it on demand.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

LIMIT_BYTES = 48 * 2**20  # a few bands of a few MiB each, for a few shapes

_local = threading.local()


def _buffers() -> dict[tuple[str, tuple[int, ...], Any], np.ndarray]:
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
    return buffers


def scratch(name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised, writable array of ``shape`` and ``dtype``, reused by the next
    request with the same name, shape and dtype (in the same thread)."""
    buffers = _buffers()
    key = (name, shape, np.dtype(dtype))
    array = buffers.get(key)
    if array is None:
        size = int(np.prod(shape)) * key[2].itemsize
        if size + sum(a.nbytes for a in buffers.values()) > LIMIT_BYTES:
            buffers.clear()
        array = buffers[key] = np.empty(shape, dtype)
    return array


def scratch_bytes() -> int:
    """How many bytes this thread's scratch buffers hold now."""
    return sum(a.nbytes for a in _buffers().values())


def release_scratch() -> None:
    """Free this thread's scratch buffers (they are made again when next needed)."""
    _buffers().clear()
