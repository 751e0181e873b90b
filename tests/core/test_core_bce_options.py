"""binary_cross_entropy (weight; torch's clamp of the logs at -100) and
binary_cross_entropy_with_logits (weight, pos_weight): values and gradients, for the
input and the target, against torch; central differences in float64; second order;
stability at the edges; the modules; and the errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import chainrule
import chainrule.functional as F
import chainrule.nn as nn
from chainrule import Tensor, gradcheck

SHAPE = (3, 5)
WEIGHTS = {"none": None, "per-element": SHAPE, "per-class": (5,), "per-row": (3, 1)}
CASES = list(itertools.product(WEIGHTS, [False, True], ["mean", "sum", "none"]))


def compare(torch, rng, ours, theirs, arrays, rtol=1e-10):
    cr = [Tensor(a, requires_grad=True) for a in arrays]
    th = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, ty = ours(*cr), theirs(*th)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=rtol, atol=1e-12)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    for c, t in zip(cr, th):
        np.testing.assert_allclose(c.grad.data, t.grad.numpy(), rtol=rtol, atol=1e-12)


def weight_array(rng, name):
    return None if WEIGHTS[name] is None else rng.uniform(0.2, 2.0, WEIGHTS[name])


@pytest.mark.parametrize("weight, pos_weighted, reduction", CASES,
                         ids=["-".join(map(str, c)) for c in CASES])
def test_bce_with_logits_options_match_torch(torch, rng, weight, pos_weighted, reduction):
    w = weight_array(rng, weight)
    pw = rng.uniform(0.5, 3.0, SHAPE[-1]) if pos_weighted else None
    x, t = rng.standard_normal(SHAPE) * 3, rng.uniform(0, 1, SHAPE)
    compare(torch, rng,
            lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction, w, pw),
            lambda x, t: torch.nn.functional.binary_cross_entropy_with_logits(
                x, t, None if w is None else torch.tensor(w), reduction=reduction,
                pos_weight=None if pw is None else torch.tensor(pw)), [x, t])


@pytest.mark.parametrize("weight, _, reduction", [c for c in CASES if not c[1]],
                         ids=[f"{c[0]}-{c[2]}" for c in CASES if not c[1]])
def test_bce_options_match_torch(torch, rng, weight, _, reduction):
    w = weight_array(rng, weight)
    p, t = rng.uniform(0.02, 0.98, SHAPE), rng.uniform(0, 1, SHAPE)
    compare(torch, rng, lambda p, t: F.binary_cross_entropy(p, t, reduction, w),
            lambda p, t: torch.nn.functional.binary_cross_entropy(
                p, t, None if w is None else torch.tensor(w), reduction=reduction), [p, t])


def test_bce_clamps_the_logs_at_the_edges_as_torch(torch):
    p = np.array([0.0, 1.0, 0.0, 1.0, 1e-50, 0.5])
    t = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.3])
    x = Tensor(p, requires_grad=True)
    y = F.binary_cross_entropy(x, t, "none")
    np.testing.assert_allclose(y.data[:5], [100.0, 100.0, 0.0, 0.0, 100.0])
    tx = torch.tensor(p, requires_grad=True)
    ty = torch.nn.functional.binary_cross_entropy(tx, torch.tensor(t), reduction="none")
    np.testing.assert_allclose(y.data, ty.detach().numpy())
    y.sum().backward()
    ty.sum().backward()
    # ±1/1e-12 at 0 and 1 (torch's floor is 1e-12 rounded to float32: 4e-9 apart)
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-8)


def test_bce_with_logits_is_stable_at_large_logits(torch):
    x = np.array([-1e4, 1e4, -1e4, 1e4, 0.0])
    t = np.array([1.0, 0.0, 0.0, 1.0, 0.5])
    pw = np.array([2.0, 2.0, 2.0, 2.0, 2.0])
    y = F.binary_cross_entropy_with_logits(Tensor(x), t, "none", pos_weight=pw)
    assert np.all(np.isfinite(y.data))
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(x), torch.tensor(t), reduction="none", pos_weight=torch.tensor(pw))
    np.testing.assert_allclose(y.data, expected.numpy())


@pytest.mark.parametrize("logits", [True, False])
def test_bce_options_gradcheck_and_second_order(torch, rng, logits):
    w = rng.uniform(0.5, 2.0, (3, 1))
    pw = rng.uniform(0.5, 3.0, 4)
    if logits:
        a, b = rng.standard_normal((3, 4)) * 2, rng.uniform(0, 1, (3, 4))

        def fn(x, t, lib=F):
            if lib is F:
                return F.binary_cross_entropy_with_logits(x, t, "sum", w, pw)
            return lib.nn.functional.binary_cross_entropy_with_logits(
                x, t, lib.tensor(w), reduction="sum", pos_weight=lib.tensor(pw))
    else:
        a, b = rng.uniform(0.1, 0.9, (3, 4)), rng.uniform(0, 1, (3, 4))

        def fn(p, t, lib=F):
            if lib is F:
                return F.binary_cross_entropy(p, t, "sum", w)
            return lib.nn.functional.binary_cross_entropy(p, t, lib.tensor(w),
                                                          reduction="sum")
    x, t = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    report = gradcheck(fn, [x, t])
    assert report.ok, report.explain()
    x.grad = t.grad = None  # (gradcheck's backward left them set)
    grads = chainrule.grad(fn(x, t), [x, t], create_graph=True)
    ((grads[0] ** 3).sum() + (grads[0] * grads[1]).sum()).backward()
    tx, tt = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    tgrads = torch.autograd.grad(fn(tx, tt, torch), [tx, tt], create_graph=True)
    ((tgrads[0] ** 3).sum() + (tgrads[0] * tgrads[1]).sum()).backward()
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-9)
    np.testing.assert_allclose(t.grad.data, tt.grad.numpy(), rtol=1e-9)


def test_bce_modules_take_the_weights(torch, rng):
    w, pw = rng.uniform(0.5, 2, 4), rng.uniform(0.5, 2, 4)
    x, t = rng.standard_normal((3, 4)), rng.uniform(0, 1, (3, 4))
    ours = nn.BCEWithLogitsLoss(weight=w, pos_weight=pw)
    theirs = torch.nn.BCEWithLogitsLoss(weight=torch.tensor(w), pos_weight=torch.tensor(pw))
    np.testing.assert_allclose(ours(x, t).data, theirs(torch.tensor(x), torch.tensor(t)),
                               rtol=1e-12)
    assert set(ours.state_dict()) == set(theirs.state_dict()) == {"weight", "pos_weight"}
    p = 1 / (1 + np.exp(-x))
    bce = nn.BCELoss("sum", weight=w)
    np.testing.assert_allclose(
        bce(p, t).data, torch.nn.BCELoss(torch.tensor(w), reduction="sum")(
            torch.tensor(p), torch.tensor(t)), rtol=1e-12)
    assert "pos_weight of shape (4,)" in repr(ours) and nn.BCELoss().state_dict() == {}
    with pytest.raises(ValueError, match="weight is a constant"):
        nn.BCELoss(weight=Tensor(w, requires_grad=True))


@pytest.mark.parametrize("call, error, message", [
    (lambda p, t: F.binary_cross_entropy(p * 2, t), ValueError,
     r"every probability must be in \[0, 1\], got 1\.\d+"),
    (lambda p, t: F.binary_cross_entropy(p, t, weight=np.ones(3)), ValueError,
     r"weight of shape \(3,\) does not broadcast to the input's shape \(2, 4\)"),
    (lambda p, t: F.binary_cross_entropy(p, t, weight=np.ones((3, 2, 4))), ValueError,
     "would widen the input's shape"),
    (lambda p, t: F.binary_cross_entropy(p, t, np.ones(4)), ValueError,
     "reduction as their third argument"),
    (lambda p, t: F.binary_cross_entropy(p, t[:1]), ValueError, "must have the same shape"),
    (lambda p, t: F.binary_cross_entropy(np.ones((2, 4), dtype=int), t), TypeError,
     "floating-point"),
    (lambda p, t: F.binary_cross_entropy_with_logits(
        p, t, pos_weight=Tensor(np.ones(4), requires_grad=True)), ValueError,
     r"pos_weight is a constant .*pos_weight.detach\(\)"),
    (lambda p, t: F.binary_cross_entropy_with_logits(p, t, pos_weight=np.ones(3)), ValueError,
     r"pos_weight of shape \(3,\) does not broadcast"),
])
def test_bce_option_errors(rng, call, error, message):
    p, t = rng.uniform(0.6, 0.9, (2, 4)), rng.uniform(0, 1, (2, 4))
    with pytest.raises(error, match=message):
        call(p, t)
