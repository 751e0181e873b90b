"""Property-based tests: broadcasting gradients and reductions on random shapes.

The reference for "sum over the broadcast axes" is built independently of
chainrule's ``sum_to``: every output position records which input element it was
copied from (broadcasting an array of flat indices), and ``np.bincount`` adds up the
upstream gradient per input element.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import chainrule.functional as F
from chainrule import Tensor

SETTINGS = settings(max_examples=40, deadline=None)
shape_pairs = mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4,
                                            max_side=3)


def unbroadcast(upstream: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``upstream`` (of the broadcast shape) onto an input of ``shape``."""
    source = np.broadcast_to(np.arange(int(np.prod(shape))).reshape(shape), upstream.shape)
    summed = np.bincount(source.ravel(), weights=upstream.ravel(),
                         minlength=int(np.prod(shape)))
    return summed.reshape(shape)


def _arrays(seed, shapes):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shapes.input_shapes[0])
    b = rng.uniform(0.5, 2.0, shapes.input_shapes[1]) * rng.choice([-1.0, 1.0],
                                                                  shapes.input_shapes[1])
    return a, b


@SETTINGS
@given(shapes=shape_pairs, seed=st.integers(0, 2 ** 16))
def test_broadcast_mul_gradient_sums_over_broadcast_axes(shapes, seed):
    a, b = _arrays(seed, shapes)
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    out = ta * tb
    assert out.shape == shapes.result_shape
    out.sum().backward()
    assert ta.grad.shape == a.shape and tb.grad.shape == b.shape
    ones = np.ones(shapes.result_shape)
    np.testing.assert_allclose(ta.grad.data, unbroadcast(ones * b, a.shape))
    np.testing.assert_allclose(tb.grad.data, unbroadcast(ones * a, b.shape))


@SETTINGS
@given(shapes=shape_pairs, seed=st.integers(0, 2 ** 16))
def test_broadcast_add_and_div_gradients(shapes, seed):
    a, b = _arrays(seed, shapes)
    upstream = np.random.default_rng(seed + 1).standard_normal(shapes.result_shape)
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    (ta + tb).backward(upstream)
    np.testing.assert_allclose(ta.grad.data, unbroadcast(upstream, a.shape))
    np.testing.assert_allclose(tb.grad.data, unbroadcast(upstream, b.shape))
    ta.grad = tb.grad = None
    (ta / tb).backward(upstream)  # d(a/b)/da = 1/b, d(a/b)/db = -a/b²
    np.testing.assert_allclose(ta.grad.data, unbroadcast(upstream / b, a.shape))
    np.testing.assert_allclose(tb.grad.data, unbroadcast(-upstream * a / b ** 2, b.shape))


@st.composite
def shape_and_axis(draw):
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple))
    ndim = len(shape)
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        axis = None
    elif kind == "int":
        axis = draw(st.integers(-ndim, ndim - 1))
    else:
        chosen = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim,
                               unique=True))
        # each axis written as positive or negative, at random
        axis = tuple(a - ndim if draw(st.booleans()) else a for a in chosen)
    return shape, axis, draw(st.booleans())


@SETTINGS
@given(case=shape_and_axis(), seed=st.integers(0, 2 ** 16))
def test_sum_and_mean_over_random_axes(case, seed):
    shape, axis, keepdims = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    expected_sum = np.sum(x, axis=axis, keepdims=keepdims)
    count = x.size // max(expected_sum.size, 1)  # elements folded into each result
    for op, expected, scale in [(F.sum, expected_sum, 1.0),
                                (F.mean, np.mean(x, axis=axis, keepdims=keepdims),
                                 1.0 / count)]:
        t = Tensor(x, requires_grad=True)
        out = op(t, axis, keepdims=keepdims)
        assert out.shape == expected.shape
        np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
        upstream = rng.standard_normal(expected.shape)
        out.backward(upstream)
        # every input element receives the upstream gradient of the result it fed
        kept = np.sum(x, axis=axis, keepdims=True).shape
        np.testing.assert_allclose(
            t.grad.data, np.broadcast_to(upstream.reshape(kept), shape) * scale)


@SETTINGS
@given(case=shape_and_axis(), seed=st.integers(0, 2 ** 16))
def test_max_over_random_axes_routes_gradient_to_the_argmax(case, seed):
    shape, axis, keepdims = case
    rng = np.random.default_rng(seed)
    x = rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float64)  # no ties
    t = Tensor(x, requires_grad=True)
    out = t.max(axis, keepdims=keepdims)
    np.testing.assert_array_equal(out.data, np.max(x, axis=axis, keepdims=keepdims))
    out.sum().backward()
    winners = x == np.max(x, axis=axis, keepdims=True)
    np.testing.assert_array_equal(t.grad.data, winners.astype(np.float64))
