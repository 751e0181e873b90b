"""Recycled memory: the large arrays of the convolutions, reused from step to step.

A training step makes the same large arrays every time: outputs, padded inputs,
bands of im2col columns, Winograd's transformed tiles. Allocating them anew costs more
than their arithmetic: glibc returns big freed blocks to the kernel, and touching a
fresh block page-faults once per 4 KiB page (about 7,000 faults, a fifth of a
DeepConvNet step, before this cache). Memory kept here is touched once and then
reused, so a step runs with few page faults and without asking the whole process to
change its allocator.

How it stays safe: ``recycled`` hands out an array that is a view of a cached block of
bytes. Every NumPy view keeps the block it views alive, so a block whose reference
count is back to the cache's own reference is no longer used by anything: handing it
out again is exactly like freeing it and allocating it anew, minus the page faults.
Callers keep and return these arrays like any other.

How it stays small: a request takes the smallest free block that is large enough (at
most twice the request), so arrays of different shapes whose lifetimes do not overlap
share memory, and the cache converges to what a step holds at once. Arrays under
``SMALLEST`` bytes are plain new ones (malloc reuses small blocks itself). It never
holds more than ``LIMIT_BYTES`` (free blocks are dropped first; beyond that, arrays are plain
new ones), and ``release_scratch()`` lets go of it all. Each thread has its own.
"""

from __future__ import annotations

import math
import sys
import threading
from typing import Any

import numpy as np

# measured, DeepConvNet at batch 100: with 64 MiB a step grew a fresh process's peak memory
# by 69 MiB and page-faulted never; with 48 MiB by 54-59 MiB (PyTorch: 62-75 MiB) with
# about 260 faults a step (PyTorch: 1,800-4,900) and the same step time; with 40 MiB,
# 600 faults and 8 % slower
LIMIT_BYTES = 48 * 2**20
SLACK = 2  # a block serves requests down to half its size (measured best of 1.25-3)
SMALLEST = 2**18  # smaller arrays come from malloc's own free lists, without faults
_PAGE = 4096

_local = threading.local()


def _blocks() -> list[np.ndarray]:
    blocks = getattr(_local, "blocks", None)
    if blocks is None:
        blocks = _local.blocks = []
    return blocks


def _references(blocks: list[np.ndarray], index: int) -> int:
    return sys.getrefcount(blocks[index])


# how many references a block held only by the cache has, as _references sees it (the
# list's, and the interpreter's own while it counts)
_UNREFERENCED = _references([np.empty(1)], 0)


def _free(blocks: list[np.ndarray], index: int) -> bool:
    return _references(blocks, index) == _UNREFERENCED


def recycled(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised, C-contiguous array of ``shape`` and ``dtype`` that the caller
    may keep, return or drop: the memory of earlier arrays nothing uses any more, or new
    memory (kept for later when the cache has room)."""
    dtype = np.dtype(dtype)
    size = math.prod(shape) * dtype.itemsize
    if size < SMALLEST:
        return np.empty(shape, dtype)
    blocks = _blocks()
    best = None
    for index in range(len(blocks)):
        block_size = blocks[index].nbytes
        if size <= block_size <= size * SLACK and _free(blocks, index) and (
                best is None or block_size < blocks[best].nbytes):
            best = index
    if best is not None:
        block = blocks[best]
    else:
        block = np.empty(-(-size // _PAGE) * _PAGE, dtype=np.uint8)
        held = sum(b.nbytes for b in blocks)
        index = 0
        while held + block.nbytes > LIMIT_BYTES and index < len(blocks):
            if _free(blocks, index):  # make room: let go of unused blocks
                held -= blocks.pop(index).nbytes
            else:
                index += 1
        if held + block.nbytes <= LIMIT_BYTES:
            blocks.append(block)
    return block[:size].view(dtype).reshape(shape)


def recycled_like(x: np.ndarray) -> np.ndarray:
    """``recycled`` with the shape, dtype and memory order of ``x`` (like
    ``np.empty_like``: a transposed ``x`` gives an equally transposed array)."""
    order = sorted(range(x.ndim), key=lambda axis: -abs(x.strides[axis]))
    stored = recycled(tuple(x.shape[axis] for axis in order), x.dtype)
    return stored.transpose(np.argsort(order))


def scratch_bytes() -> int:
    """How many bytes this thread's cache holds now (used and unused)."""
    return sum(b.nbytes for b in _blocks())


def release_scratch() -> None:
    """Let go of this thread's cached memory (arrays still in use stay valid)."""
    _blocks().clear()
