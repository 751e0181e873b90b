"""Initialisers: spreads, fan-in/fan-out for both weight layouts, seeds, names."""

from __future__ import annotations

import math

import numpy as np
import pytest

from chainrule import Tensor, nn
from chainrule.nn import init


def test_fan_in_and_fan_out_for_both_layouts():
    assert init.fan_in_and_fan_out((784, 50)) == (784, 50)  # Linear: (in, out)
    assert init.fan_in_and_fan_out((16, 3, 5, 5)) == (75, 400)  # conv: (out, in, kh, kw)
    assert init.fan_in_and_fan_out((50, 784), layout="out_in") == (784, 50)  # torch Linear
    with pytest.raises(ValueError, match="at least 2"):
        init.fan_in_and_fan_out((10,))
    with pytest.raises(ValueError, match="in_out"):
        init.fan_in_and_fan_out((3, 4), layout="sideways")


@pytest.mark.parametrize("fn,shape,expected_std", [
    (init.he_normal_, (400, 300), math.sqrt(2 / 400)),
    (init.he_uniform_, (400, 300), math.sqrt(2 / 400)),
    (init.xavier_normal_, (400, 300), math.sqrt(2 / 700)),
    (init.xavier_uniform_, (400, 300), math.sqrt(2 / 700)),
    (init.he_normal_, (64, 32, 3, 3), math.sqrt(2 / (32 * 9))),
    (init.xavier_uniform_, (64, 32, 3, 3), math.sqrt(2 / (32 * 9 + 64 * 9))),
])
def test_spread(fn, shape, expected_std):
    w = nn.Parameter(np.empty(shape, dtype=np.float32))
    assert fn(w, rng=0) is w
    assert w.dtype == np.float32
    assert abs(w.data.mean()) < 0.05 * expected_std
    assert w.data.std() == pytest.approx(expected_std, rel=0.03)


def test_normal_uniform_constants():
    w = np.empty((300, 300))
    init.normal_(w, std=0.01, rng=1)
    assert w.std() == pytest.approx(0.01, rel=0.02)
    init.uniform_(w, -2.0, 3.0, rng=1)
    assert w.min() >= -2.0 and w.max() < 3.0
    t = Tensor(np.empty((2, 3)))
    np.testing.assert_array_equal(init.zeros_(t).data, 0)
    np.testing.assert_array_equal(init.ones_(t).data, 1)
    np.testing.assert_array_equal(init.constant_(t, 0.5).data, 0.5)
    with pytest.raises(TypeError, match="floating-point"):
        init.zeros_(np.zeros(3, dtype=np.int64))


def test_seeded_reproducibility():
    a, b = np.empty((5, 4)), np.empty((5, 4))
    init.he_normal_(a, rng=3)
    init.he_normal_(b, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(nn.Linear(5, 4, seed=3).weight.data,
                                  nn.Linear(5, 4, seed=3).weight.data)
    assert not np.array_equal(nn.Linear(5, 4, seed=3).weight.data,
                              nn.Linear(5, 4, seed=4).weight.data)
    with pytest.raises(ValueError, match="not both"):
        nn.Linear(2, 2, seed=1, rng=np.random.default_rng(1))


def test_get_initializer_names():
    assert init.get_initializer("he") is init.he_normal_
    assert init.get_initializer("Kaiming") is init.he_normal_
    assert init.get_initializer("glorot") is init.xavier_normal_
    assert init.get_initializer("std") is init.normal_
    zeros = init.get_initializer("zeros")
    np.testing.assert_array_equal(zeros(np.ones(3), rng=0), 0)
    custom = init.get_initializer(lambda t, rng=None: init.constant_(t, 2.0))
    assert nn.Linear(2, 2, init=custom).weight.data.max() == 2.0
    with pytest.raises(ValueError, match="valid names: .*he.*xavier"):
        init.get_initializer("lecun")
    with pytest.raises(ValueError, match="unknown initialiser"):
        nn.Linear(2, 2, init="bogus")


def test_linear_init_by_name():
    w = nn.Linear(500, 400, init="he", seed=0).weight.data
    assert w.std() == pytest.approx(math.sqrt(2 / 500), rel=0.03)
    np.testing.assert_array_equal(nn.Linear(3, 2, init="zeros").weight.data, 0)
