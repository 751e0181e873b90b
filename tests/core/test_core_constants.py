"""The cache of constant arrays behind the hot operations (chainrule.ops._constants)."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule.functional as F
from chainrule import Tensor
from chainrule.ops._constants import _cache, cached_array


def test_constants_are_reused_read_only_and_exact():
    ones = cached_array("ones", 7, np.float32)
    assert cached_array("ones", 7, np.float32) is ones  # made once
    assert ones.dtype == np.float32 and ones.shape == (7,) and (ones == 1).all()
    zeros = cached_array("zeros", (2, 3), np.float64)
    assert zeros.shape == (2, 3) and zeros.dtype == np.float64 and not zeros.any()
    np.testing.assert_array_equal(cached_array("arange", 5), np.arange(5))
    assert cached_array("ones", 7, np.float64) is not ones  # the dtype is part of the key
    with pytest.raises(ValueError, match="read-only"):
        ones[0] = 2.0  # shared, so nobody may change it


def test_the_cache_stays_small():
    for n in range(100):
        cached_array("arange", n + 1)
    assert len(_cache) <= 33


@pytest.mark.parametrize("shape", [(100, 50), (70, 1000)])  # both sides of 2**16 values
def test_relu_on_small_and_large_arrays_matches_torch(shape):
    torch = pytest.importorskip("torch")
    data = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    data[0, :2] = [0.0, -0.0]  # the kink: gradient 0 there, as in PyTorch
    x = Tensor(data, requires_grad=True)
    xt = torch.tensor(data, requires_grad=True)
    y, yt = F.relu(x), torch.relu(xt)
    np.testing.assert_array_equal(y.data, yt.detach().numpy())
    assert not np.signbit(y.data).any()  # no -0.0 in the output
    g = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    y.backward(Tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_array_equal(x.grad.data, xt.grad.numpy())
