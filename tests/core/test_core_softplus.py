"""softplus(beta, threshold) and nn.Softplus: the linear part above the threshold,
central differences in float64 and parity with torch (values, gradients, second
derivatives), and the argument checks."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule.functional as F
import chainrule.nn as nn
from chainrule import Tensor, gradcheck

# (beta, threshold): the default, a steep and a flat one, a negative beta (torch allows
# it: a soft minimum), and a threshold low enough that both branches are sampled
SETTINGS = [(1.0, 20.0), (3.0, 20.0), (0.5, 2.0), (-2.0, 20.0), (2.0, 1.5)]


def inputs(rng, shape=(3, 5)):
    # values of both signs, kept 0.05 away from the threshold's kink for every setting
    x = rng.uniform(-4, 4, shape)
    for beta, threshold in SETTINGS:
        near = np.abs(beta * x - threshold) < 0.05 * abs(beta)
        x[near] += 0.2
    return x


@pytest.mark.parametrize("beta, threshold", SETTINGS)
def test_softplus_gradcheck(rng, beta, threshold):
    x = Tensor(inputs(rng), requires_grad=True)
    report = gradcheck(lambda x: F.softplus(x, beta, threshold), [x])
    assert report.ok, report.explain()


@pytest.mark.parametrize("beta, threshold", SETTINGS)
def test_softplus_matches_torch(torch, rng, beta, threshold):
    a = inputs(rng, (4, 7))
    x = Tensor(a, requires_grad=True)
    tx = torch.tensor(a, requires_grad=True)
    y = F.softplus(x, beta, threshold)
    ty = torch.nn.functional.softplus(tx, beta=beta, threshold=threshold)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    g = rng.standard_normal(a.shape)
    y.backward(g, create_graph=True)
    (tgx,) = torch.autograd.grad(ty, tx, torch.tensor(g), create_graph=True)
    np.testing.assert_allclose(x.grad.data, tgx.detach().numpy(), rtol=1e-12, atol=1e-14)
    # the second derivative: β·σ'(βx) below the threshold, 0 above it
    gx = x.grad
    x.grad = None
    (gx * gx).sum().backward()
    (tgxx,) = torch.autograd.grad((tgx * tgx).sum(), tx)
    np.testing.assert_allclose(x.grad.data, tgxx.numpy(), rtol=1e-10, atol=1e-12)


def test_softplus_is_linear_above_the_threshold_and_stable():
    x = Tensor(np.array([-1e4, -30.0, 0.0, 9.0, 11.0, 1e4]), requires_grad=True)
    y = F.softplus(x, beta=2.0, threshold=20.0)
    assert np.all(np.isfinite(y.data))
    assert y.data[4] == 11.0 and y.data[5] == 1e4  # βx = 22 > 20: x itself
    np.testing.assert_allclose(y.data[3], np.log1p(np.exp(18.0)) / 2)  # βx = 18: exact
    assert y.data[0] == 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data[[0, 2, 4, 5]], [0.0, 0.5, 1.0, 1.0])


def test_softplus_keeps_float32():
    x = Tensor(np.linspace(-30, 30, 7, dtype=np.float32), requires_grad=True)
    y = F.softplus(x, beta=0.5, threshold=3.0)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_softplus_module(torch, rng):
    layer = nn.Softplus(beta=2.0, threshold=4.0)
    assert "beta=2.0, threshold=4.0" in repr(layer)
    a = inputs(rng)
    expected = torch.nn.Softplus(beta=2.0, threshold=4.0)(torch.tensor(a)).numpy()
    np.testing.assert_allclose(layer(a).data, expected, rtol=1e-12)
    assert isinstance(nn.get_activation("softplus"), nn.Softplus)


@pytest.mark.parametrize("kwargs, message", [
    (dict(beta=0.0), "beta must be a finite non-zero number"),
    (dict(beta=float("inf")), "beta must be a finite non-zero number"),
    (dict(beta="2"), "beta must be a number"),
    (dict(threshold=None), "threshold must be a number"),
])
def test_softplus_bad_arguments(kwargs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        F.softplus(Tensor(np.ones(2)), **kwargs)
    with pytest.raises((TypeError, ValueError), match=message):
        nn.Softplus(**kwargs)
