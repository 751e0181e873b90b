"""chainrule/ops/_parallel.py: work shared among threads (chainrule.num_threads(n)).

The shares must give the results of one thread: a convolution's forward pass and input
gradient bit for bit, its weight gradient and a split product to round-off (another
order of additions, another blocking inside BLAS); errors in a share reach the caller
after every share ended.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

import chainrule
import chainrule.functional as F
import chainrule.ops.conv as conv_ops
from chainrule import Tensor
from chainrule.ops import _parallel, _winograd


@pytest.fixture
def two_threads(monkeypatch):
    """chainrule.num_threads(2), restored after the test."""
    with chainrule.num_threads(2):
        yield


def _blas_threads() -> int:
    from threadpoolctl import threadpool_info

    return max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")


def test_num_threads_shares_and_gives_blas_as_many():
    before = _parallel.workers()
    with chainrule.num_threads(3):
        assert _parallel.workers() == 3 and chainrule.get_num_threads() == 3
        assert _blas_threads() == 3  # a NumPy program's own products get them too
        # a band loop holds BLAS at one thread, and so do products right after it
        assert _parallel.split([0, 1, 2], lambda share: _blas_threads()) == [1, 1, 1]
        a = np.ones((100, 3000), dtype=np.float32)
        _parallel.matmul(a, a.T)
        assert _blas_threads() == 1
    assert _parallel.workers() == before


def test_split_gives_every_share_in_order_and_uses_other_threads(two_threads):
    names = []

    def work(share):
        names.append(threading.current_thread().name)
        time.sleep(0.05)  # long enough that the shares overlap
        return list(share)

    assert _parallel.split(list(range(7)), work) == [[0, 1, 2], [3, 4, 5, 6]]
    assert len(set(names)) == 2
    assert _parallel.split([5], work) == [[5]]  # one item: no split
    with chainrule.num_threads(1):
        assert _parallel.split(list(range(4)), work) == [[0, 1, 2, 3]]


def test_an_error_in_a_share_is_raised_after_all_shares_ended(two_threads):
    finished = []

    def work(share):
        if share[0] == 2:
            raise ValueError("share two failed")
        time.sleep(0.1)
        finished.append(share[0])

    with pytest.raises(ValueError, match="share two failed"):
        _parallel.split([0, 1, 2, 3], work)
    assert finished == [0]  # the calling thread's share ran to its end first


@pytest.mark.parametrize("shape", [(300, 200, 700), (700, 200, 300)])  # columns / rows
def test_a_split_product_equals_one_threads(two_threads, rng, monkeypatch, shape):
    m, k, n = shape
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    monkeypatch.setattr(_parallel, "SPLIT_MACS", 1)
    monkeypatch.setattr(_parallel, "_last_split", time.monotonic())  # as after a conv
    calls = []
    monkeypatch.setattr(_parallel, "split", lambda items, work: calls.append(items) or
                        [work(items[:len(items) // 2]), work(items[len(items) // 2:])])
    product = _parallel.matmul(a, b)
    assert calls and len(calls[0]) == (m if m * k >= k * n else n)
    with chainrule.num_threads(1):
        np.testing.assert_allclose(product, a @ b, rtol=1e-5, atol=1e-4)


def test_a_product_long_after_any_split_is_blas_own(two_threads, rng, monkeypatch):
    monkeypatch.setattr(_parallel, "_last_split", -np.inf)
    monkeypatch.setattr(_parallel, "split", lambda *args: pytest.fail("split"))
    a, b = rng.standard_normal((200, 300)), rng.standard_normal((300, 400))
    np.testing.assert_array_equal(_parallel.matmul(a, b), a @ b)


@pytest.mark.parametrize("algorithm", ["im2col", "banded", "winograd"])
def test_a_convolution_on_two_threads_equals_one_thread(rng, monkeypatch, algorithm):
    """Forward and input gradient bit for bit; the weight gradient (partial sums
    added in another order) to round-off; with many bands so that every share has
    several."""
    monkeypatch.setattr(conv_ops, "BAND_BYTES", 1)
    monkeypatch.setattr(_winograd, "BAND_BYTES", 1)
    x = rng.standard_normal((3, 4, 9, 8)).astype(np.float32)
    w = rng.standard_normal((5, 4, 3, 3)).astype(np.float32)
    g = rng.standard_normal((3, 5, 9, 8)).astype(np.float32)
    results = []
    for threads in (1, 2):
        xt, wt = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
        with chainrule.num_threads(threads), conv_ops.use_algorithm(algorithm):
            y = F.conv2d(xt, wt, padding=1)
            y.backward(g)
        results.append((y.data.copy(), xt.grad.data.copy(), wt.grad.data.copy()))
    (y1, dx1, dw1), (y2, dx2, dw2) = results
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(dx1, dx2)
    np.testing.assert_allclose(dw1, dw2, rtol=1e-5, atol=1e-5)


def _split_in_child(queue) -> None:
    queue.put(_parallel.split(list(range(4)), lambda share: threading.current_thread().name))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_shares_work_on_threads_of_its_own(two_threads):
    """A fork copies the pool but none of its threads; the child makes a new one
    (without that, its first split would wait for ever)."""
    import multiprocessing

    _parallel.split([0, 1], lambda share: None)  # the parent's pool exists
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_split_in_child, args=(queue,), daemon=True)
    child.start()
    try:
        names = queue.get(timeout=30)
        child.join(timeout=30)
    finally:
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0 and len(names) == 2 and names[0] != names[1]


@pytest.mark.parametrize("layer", ["relu", "max_pool", "max_pool_ceil_padded",
                                   "max_pool_minus_inf", "avg_pool", "conv_stride2",
                                   "conv_padded"])
def test_elementwise_passes_on_two_threads_equal_one_thread(rng, monkeypatch, layer):
    """ReLU, the pools, col2im and a convolution's zero padding take shares of the
    channels on several threads (every array is shared out here); forward and backward
    bit for bit, with ties and windows of -inf only in the max-pool's."""
    monkeypatch.setattr(_parallel, "SPLIT_ELEMENTS", 1)
    x = rng.standard_normal((3, 5, 8, 7)).astype(np.float32)
    x[:, :, ::2, :6:2] = x[:, :, 1::2, 1::2]  # ties: the first maximum must win
    if layer == "max_pool_minus_inf":  # windows of -inf only: the first pixel inside wins
        x[:, 3:] = -np.inf
    w = rng.standard_normal((4, 5, 3, 3)).astype(np.float32)
    run = {"relu": lambda t: F.relu(t),
           "max_pool": lambda t: F.max_pool2d(t, 2, 2),
           "max_pool_ceil_padded": lambda t: F.max_pool2d(t, 3, 2, padding=1, ceil_mode=True),
           "max_pool_minus_inf": lambda t: F.max_pool2d(t, 3, 2, padding=1),
           "conv_padded": lambda t: F.conv2d(t, Tensor(w), padding=(2, 1)),
           "avg_pool": lambda t: F.avg_pool2d(t, 3, 2, padding=1),
           "conv_stride2": lambda t: F.conv2d(t, Tensor(w), stride=2, padding=1)}[layer]
    results = []
    for threads in (1, 2):
        xt = Tensor(x, requires_grad=True)
        with chainrule.num_threads(threads):
            y = run(xt)
            y.backward(np.arange(y.size, dtype=np.float32).reshape(y.shape) % 7 - 3)
        results.append((y.data.copy(), xt.grad.data.copy()))
    (y1, dx1), (y2, dx2) = results
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(dx1, dx2)
