"""Pooling options as torch's: max_pool2d's dilation, ceil_mode and return_indices,
avg_pool2d's ceil_mode, count_include_pad and divisor_override, adaptive_avg_pool2d,
and their layers. Each against torch (values, gradients, indices, double backward) and
central differences in float64 with odd sizes; and the errors."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
import chainrule.functional as F
import chainrule.nn as nn
from chainrule import Tensor, gradcheck


def distinct_values(rng, shape):
    """Values at least 0.1 apart: no max-pool window has a tie, and gradcheck's nudges
    never change which element wins."""
    return rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float64) * 0.1


def compare(torch, rng, ours, theirs, a):
    x = Tensor(a, requires_grad=True)
    tx = torch.tensor(a, requires_grad=True)
    y, ty = ours(x), theirs(tx)
    assert y.shape == tuple(ty.shape)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-12, atol=1e-14)


def second_order(fn):
    def f(x):
        with chainrule.enable_grad():  # gradcheck evaluates f under no_grad
            (gx,) = chainrule.grad((fn(x) ** 3).sum(), [x], create_graph=True)
            return (gx * gx).sum()
    return f


# --------------------------------------------------------------------------- max
# (N, C, H, W), kernel, stride, padding, dilation, ceil_mode
MAX_CASES = {
    "dilation2": ((2, 2, 7, 8), 3, 1, 1, 2, False),
    "dilation-rect": ((1, 3, 9, 7), (2, 3), (2, 1), (1, 0), (3, 2), False),
    "ceil": ((2, 2, 7, 6), 2, 2, 0, 1, True),
    "ceil-pad": ((2, 1, 6, 7), 3, 2, 1, 1, True),
    "ceil-drops-last": ((1, 2, 5, 5), 2, 2, 1, 1, True),  # a window would start in padding
    "ceil-dilation": ((1, 2, 8, 9), 3, 3, 1, 2, True),
    "ceil-stride>kernel": ((2, 1, 8, 7), 2, 3, 0, 1, True),
}


@pytest.mark.parametrize("name", list(MAX_CASES))
def test_max_pool_options_match_torch(torch, rng, name):
    shape, kernel, stride, padding, dilation, ceil = MAX_CASES[name]
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation,
              ceil_mode=ceil)
    a = distinct_values(rng, shape) - 3.0
    compare(torch, rng, lambda x: F.max_pool2d(x, **kw),
            lambda x: torch.nn.functional.max_pool2d(x, **kw), a)
    y, index = F.max_pool2d(a, **kw, return_indices=True)
    ty, tindex = torch.nn.functional.max_pool2d(torch.tensor(a), **kw, return_indices=True)
    assert index.dtype == np.int64 and index.requires_grad is False
    np.testing.assert_array_equal(index.data, tindex.numpy())
    np.testing.assert_array_equal(y.data, ty.numpy())


@pytest.mark.parametrize("name", list(MAX_CASES))
def test_max_pool_options_gradcheck(rng, name):
    shape, kernel, stride, padding, dilation, ceil = MAX_CASES[name]
    x = Tensor(distinct_values(rng, shape), requires_grad=True)
    report = gradcheck(lambda x: F.max_pool2d(x, kernel, stride, padding, dilation, ceil),
                       [x])
    assert report.ok, report.explain()


def test_max_pool_indices_find_the_values_and_ties_take_the_first(rng):
    a = rng.integers(0, 3, (2, 3, 7, 6)).astype(np.float64)  # many ties
    y, index = F.max_pool2d(a, 3, 2, 1, 1, True, return_indices=True)
    planes = a.reshape(2, 3, -1)
    picked = np.take_along_axis(planes, index.data.reshape(2, 3, -1), axis=2)
    np.testing.assert_array_equal(picked.reshape(y.shape), y.data)


def test_max_pool_indices_match_torch_with_ties(torch, rng):
    a = rng.integers(0, 3, (2, 2, 7, 8)).astype(np.float64)
    _, index = F.max_pool2d(a, 3, 2, 1, 2, True, return_indices=True)
    _, tindex = torch.nn.functional.max_pool2d(torch.tensor(a), 3, 2, 1, 2, True,
                                               return_indices=True)
    np.testing.assert_array_equal(index.data, tindex.numpy())


def test_ceil_mode_takes_a_kernel_larger_than_the_input(torch, rng):
    """In ceil_mode one window may run off the edge, even when the kernel is larger than
    the padded input (torch's rule); a second would start past the input."""
    a = rng.standard_normal((1, 2, 2, 5))
    for fn in ("max_pool2d", "avg_pool2d"):
        ours = getattr(F, fn)(a, 3, 2, ceil_mode=True)
        theirs = getattr(torch.nn.functional, fn)(torch.tensor(a), 3, 2, ceil_mode=True)
        assert ours.shape == tuple(theirs.shape) == (1, 2, 1, 2)
        np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="larger than the padded input"):
        F.max_pool2d(a, 4, 2, ceil_mode=False)
    with pytest.raises(ValueError, match="larger than the padded input"):
        F.max_pool2d(rng.standard_normal((1, 1, 1, 1)), 4, 2, ceil_mode=True)


def test_max_pool_of_minus_infinity_picks_the_first_pixel_inside(torch):
    """Where a window's maximum is -inf it ties with the padding; as in torch, the
    first pixel inside the image is the winner and gets the gradient."""
    a = np.full((1, 1, 4, 5), -np.inf)
    a[0, 0, 3, 4] = 1.0
    x = Tensor(a, requires_grad=True)
    y, index = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    tx = torch.tensor(a, requires_grad=True)
    ty, tindex = torch.nn.functional.max_pool2d(tx, 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(index.data, tindex.numpy())
    g = np.arange(1.0, 1.0 + y.size).reshape(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    np.testing.assert_array_equal(x.grad.data, tx.grad.numpy())


# --------------------------------------------------------------------------- average
# (N, C, H, W), kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
AVG_CASES = {
    "exclude-pad": ((2, 2, 7, 6), 3, 2, 1, False, False, None),
    "ceil": ((2, 2, 7, 6), 2, 2, 0, True, True, None),
    "ceil-pad-include": ((1, 3, 6, 7), 3, 2, 1, True, True, None),
    "ceil-pad-exclude": ((1, 3, 6, 7), 3, 2, 1, True, False, None),
    "ceil-rect": ((2, 1, 5, 9), (2, 4), (3, 2), (1, 2), True, True, None),
    "ceil-drops-last": ((1, 2, 5, 5), 2, 2, 1, True, False, None),
    "override": ((2, 2, 7, 6), 3, 2, 1, True, True, 5),
    "override-negative": ((1, 2, 6, 6), 2, 2, 0, False, False, -3),
}


@pytest.mark.parametrize("name", list(AVG_CASES))
def test_avg_pool_options_match_torch(torch, rng, name):
    shape, kernel, stride, padding, ceil, include, override = AVG_CASES[name]
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil,
              count_include_pad=include, divisor_override=override)
    compare(torch, rng, lambda x: F.avg_pool2d(x, **kw),
            lambda x: torch.nn.functional.avg_pool2d(x, **kw), rng.standard_normal(shape))


@pytest.mark.parametrize("name", list(AVG_CASES))
def test_avg_pool_options_gradcheck(rng, name):
    shape, kernel, stride, padding, ceil, include, override = AVG_CASES[name]
    x = Tensor(rng.standard_normal(shape), requires_grad=True)
    report = gradcheck(lambda x: F.avg_pool2d(x, kernel, stride, padding, ceil, include,
                                              override), [x])
    assert report.ok, report.explain()


def test_avg_pool_divisors_by_hand():
    """A 1×3 row, kernel 2, stride 2, padding 1, ceil_mode: windows [-1, 1), [1, 3),
    [3, 5) would start in the padding, so two windows: [pad, x0] and [x1, x2]."""
    x = np.array([[[[1.0, 2.0, 4.0]]]])
    kw = dict(kernel_size=(1, 2), stride=(1, 2), padding=(0, 1), ceil_mode=True)
    np.testing.assert_allclose(F.avg_pool2d(x, **kw).data, [[[[0.5, 3.0]]]])
    np.testing.assert_allclose(F.avg_pool2d(x, **kw, count_include_pad=False).data,
                               [[[[1.0, 3.0]]]])


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_pool_options_double_backward(torch, rng, pool):
    if pool == "max":
        def fn(x, lib=F):
            return lib.max_pool2d(x, 3, 2, 1, 2, True)
        a = distinct_values(rng, (2, 2, 7, 8))
    else:
        def fn(x, lib=F):
            return lib.avg_pool2d(x, 3, 2, 1, True, False)
        a = rng.standard_normal((2, 2, 7, 6))
    x = Tensor(a, requires_grad=True)
    report = gradcheck(second_order(fn), [x], atol=1e-4)
    assert report.ok, report.explain()
    x.grad = None
    second_order(fn)(x).backward()
    tx = torch.tensor(a, requires_grad=True)
    (tg,) = torch.autograd.grad((fn(tx, torch.nn.functional) ** 3).sum(), [tx],
                                create_graph=True)
    (tg * tg).sum().backward()
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-10)


def test_pool_options_keep_float32(rng):
    x = Tensor(rng.standard_normal((2, 3, 7, 7)).astype(np.float32), requires_grad=True)
    y = F.avg_pool2d(x, 3, 2, 1, True, False) + F.max_pool2d(x, 3, 2, 1, 1, True)
    y += F.adaptive_avg_pool2d(x, (4, 4))
    y.sum().backward()
    assert y.dtype == x.grad.dtype == np.float32


# --------------------------------------------------------------------------- adaptive
ADAPTIVE_CASES = [((2, 3, 7, 9), (3, 4)), ((1, 2, 5, 5), 1), ((2, 1, 6, 4), (4, 4)),
                  ((1, 2, 3, 5), (5, 7)), ((2, 2, 8, 6), (None, 2)), ((1, 1, 10, 3), (3, None))]


@pytest.mark.parametrize("shape, size", ADAPTIVE_CASES)
def test_adaptive_avg_pool_matches_torch(torch, rng, shape, size):
    compare(torch, rng, lambda x: F.adaptive_avg_pool2d(x, size),
            lambda x: torch.nn.functional.adaptive_avg_pool2d(x, size),
            rng.standard_normal(shape))


@pytest.mark.parametrize("shape, size", ADAPTIVE_CASES[:4])
def test_adaptive_avg_pool_gradcheck_and_double_backward(rng, shape, size):
    x = Tensor(rng.standard_normal(shape), requires_grad=True)
    report = gradcheck(lambda x: F.adaptive_avg_pool2d(x, size), [x])
    assert report.ok, report.explain()
    report = gradcheck(second_order(lambda x: F.adaptive_avg_pool2d(x, size)), [x],
                       atol=1e-4)
    assert report.ok, report.explain()


def test_adaptive_avg_pool_of_one_is_the_global_mean(rng):
    a = rng.standard_normal((2, 3, 5, 7))
    np.testing.assert_allclose(F.adaptive_avg_pool2d(a, 1).data[..., 0, 0],
                               a.mean(axis=(2, 3)))


# --------------------------------------------------------------------------- layers
def test_pool_layers_take_the_options_and_match_torch(torch, rng):
    a = distinct_values(rng, (2, 2, 7, 8))
    layers = [
        (nn.MaxPool2d(3, 2, 1, dilation=2, ceil_mode=True),
         torch.nn.MaxPool2d(3, 2, 1, dilation=2, ceil_mode=True)),
        (nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
         torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)),
        (nn.AvgPool2d(2, divisor_override=3), torch.nn.AvgPool2d(2, divisor_override=3)),
        (nn.AdaptiveAvgPool2d((3, None)), torch.nn.AdaptiveAvgPool2d((3, None))),
    ]
    for ours, theirs in layers:
        np.testing.assert_allclose(ours(a).data, theirs(torch.tensor(a)).numpy(),
                                   rtol=1e-12)
    y, index = nn.MaxPool2d(2, return_indices=True)(a)
    _, tindex = torch.nn.MaxPool2d(2, return_indices=True)(torch.tensor(a))
    np.testing.assert_array_equal(index.data, tindex.numpy())
    assert "dilation=(2, 2), ceil_mode=True" in repr(layers[0][0])
    assert "count_include_pad=False" in repr(layers[1][0])
    assert "divisor_override=3" in repr(layers[2][0])
    assert "output_size=(3, None)" in repr(layers[3][0])


@pytest.mark.parametrize("call, error, message", [
    (lambda x: F.max_pool2d(x, 2, padding=2, dilation=3), ValueError,
     r"padding \(2, 2\) must be at most half the kernel size \(2, 2\)"),
    (lambda x: F.max_pool2d(x, 2, dilation=0), ValueError, "dilation must be at least 1"),
    (lambda x: F.max_pool2d(x, 2, ceil_mode="yes"), TypeError,
     "ceil_mode must be True or False, got 'yes'"),
    (lambda x: F.avg_pool2d(x, 2, divisor_override=0), ValueError,
     "divisor_override must be a non-zero int"),
    (lambda x: F.adaptive_avg_pool2d(x, 0), ValueError,
     "output_size must be a positive int or a pair"),
    (lambda x: F.adaptive_avg_pool2d(x, (2, 2, 2)), ValueError, r"got \(2, 2, 2\)"),
    (lambda x: F.adaptive_avg_pool2d(x[0], 2), ValueError, r"\(N, C, H, W\)"),
    (lambda x: F.adaptive_avg_pool2d(np.ones((1, 1, 3, 3), dtype=int), 2), TypeError,
     "floating-point"),
    (lambda x: nn.MaxPool2d(2, ceil_mode=1), TypeError, "ceil_mode must be True or False"),
    (lambda x: nn.AdaptiveAvgPool2d(-1), ValueError, "output_size must be a positive"),
])
def test_pool_option_errors(rng, call, error, message):
    with pytest.raises(error, match=message):
        call(Tensor(rng.standard_normal((1, 2, 5, 5))))
