"""Constant arrays the hot operations need every training step, made once and reused.

Making a vector of ones or an index range costs about as much as using it, and a batch
of the same size comes every step. The arrays are read-only, so sharing them is safe.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_cache: dict[tuple[str, tuple[int, ...], Any], np.ndarray] = {}


def cached_array(kind: str, shape: int | tuple[int, ...], dtype: Any = None) -> np.ndarray:
    """A read-only ``np.zeros``/``np.ones(shape, dtype)`` or ``np.arange(n)`` (kind
    "zeros", "ones" or "arange"), kept for the next call with the same arguments."""
    key = (kind, shape if isinstance(shape, tuple) else (shape,), dtype)
    array = _cache.get(key)
    if array is None:
        if len(_cache) > 32:  # shapes come and go (a last, smaller batch); stay small
            _cache.clear()
        if kind == "arange":
            array = np.arange(key[1][0])
        else:
            array = (np.zeros if kind == "zeros" else np.ones)(key[1], dtype)
        array.flags.writeable = False
        _cache[key] = array
    return array
