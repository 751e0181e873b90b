"""The losses' options as torch's: cross_entropy with ignore_index, class weight,
label_smoothing and probability targets (with their gradient), in every combination
torch allows; nll_loss; and the composed twin nll_loss(log_softmax) = cross_entropy.
Values and gradients (first and second order) against torch, and the errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import chainrule
import chainrule.functional as F
import chainrule.nn as nn
from chainrule import Tensor, gradcheck


def to_torch_layout(torch, x):
    """chainrule puts the classes last, torch on axis 1: (N, T, C) -> (N, C, T)."""
    return x if x.ndim <= 2 else x.movedim(-1, 1)


def from_torch_layout(a):
    return a if a.ndim <= 2 else np.moveaxis(a, 1, -1)


def make_case(rng, shape, kind, ignore):
    """Logits of ``shape`` and a target: class indices (some ignored if asked) or
    probabilities."""
    x = rng.standard_normal(shape) * 2
    if kind == "indices":
        t = rng.integers(0, shape[-1], shape[:-1])
        if ignore:
            t.reshape(-1)[::3] = ignore
        return x, t
    return x, rng.dirichlet(np.ones(shape[-1]), shape[:-1])


COMBINATIONS = [
    (shape, kind, weighted, smoothing, ignore, reduction)
    for shape, kind, weighted, smoothing, ignore, reduction in itertools.product(
        [(6, 4), (2, 3, 5), (3, 600)], ["indices", "probabilities"], [False, True],
        [0.0, 0.3], [None, -100, 1], ["mean", "sum", "none"])
    if not (kind == "probabilities" and ignore is not None)  # torch: indices only
    and not (ignore == -100 and reduction == "sum")  # (fewer cases: -100 and 1 alike)
]


@pytest.mark.parametrize("shape, kind, weighted, smoothing, ignore, reduction",
                         COMBINATIONS, ids=["-".join(map(str, c)) for c in COMBINATIONS])
def test_cross_entropy_options_match_torch(torch, rng, shape, kind, weighted, smoothing,
                                           ignore, reduction):
    a, t = make_case(rng, shape, kind, ignore)
    weight = rng.uniform(0.2, 2.0, shape[-1]) if weighted else None
    kw = dict(label_smoothing=smoothing, reduction=reduction)
    if ignore is not None:
        kw["ignore_index"] = ignore
    x = Tensor(a, requires_grad=True)
    target = Tensor(t, requires_grad=True) if kind == "probabilities" else t
    y = F.cross_entropy(x, target, weight=weight, **kw)
    tx = torch.tensor(a, requires_grad=True)
    tt = torch.tensor(t, requires_grad=kind == "probabilities")
    ty = torch.nn.functional.cross_entropy(
        to_torch_layout(torch, tx), to_torch_layout(torch, tt) if kind != "indices" else tt,
        weight=None if weight is None else torch.tensor(weight), **kw)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    if kind == "probabilities":
        np.testing.assert_allclose(target.grad.data, tt.grad.numpy(), rtol=1e-10,
                                   atol=1e-12)


@pytest.mark.parametrize("kind", ["indices", "probabilities"])
def test_cross_entropy_options_second_order_match_torch(torch, rng, kind):
    a, t = make_case(rng, (2, 3, 5), kind, -100 if kind == "indices" else None)
    weight = rng.uniform(0.2, 2.0, 5)

    def loss(lib, x, target, w):
        if lib is F:
            return F.cross_entropy(x, target, weight=w, label_smoothing=0.2)
        return lib.nn.functional.cross_entropy(to_torch_layout(lib, x), target if
                                               kind == "indices" else
                                               to_torch_layout(lib, target),
                                               weight=w, label_smoothing=0.2)

    leaves = [Tensor(a, requires_grad=True)]
    tleaves = [torch.tensor(a, requires_grad=True)]
    if kind == "probabilities":
        leaves.append(Tensor(t, requires_grad=True))
        tleaves.append(torch.tensor(t, requires_grad=True))
    target = leaves[1] if len(leaves) > 1 else t
    ttarget = tleaves[1] if len(tleaves) > 1 else torch.tensor(t)
    grads = chainrule.grad(loss(F, leaves[0], target, weight), leaves, create_graph=True)
    sum(((gr * gr * gr).sum() for gr in grads), Tensor(0.0)).backward()
    tgrads = torch.autograd.grad(loss(torch, tleaves[0], ttarget, torch.tensor(weight)),
                                 tleaves, create_graph=True)
    sum((gr ** 3).sum() for gr in tgrads).backward()
    for ours, theirs in zip(leaves, tleaves):
        np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-9,
                                   atol=1e-12)


def test_cross_entropy_options_gradcheck_with_targets(rng):
    x = Tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    t = Tensor(rng.dirichlet(np.ones(4), (2, 3)), requires_grad=True)
    w = rng.uniform(0.5, 2, 4)
    report = gradcheck(lambda x, t: F.cross_entropy(x, t, "none", weight=w,
                                                    label_smoothing=0.3), [x, t])
    assert report.ok, report.explain()


def test_weighted_mean_divides_by_the_weights_of_the_counted_targets():
    x = np.zeros((3, 2))  # every -log p is ln 2
    t = np.array([0, 1, -100])
    w = np.array([1.0, 3.0])
    np.testing.assert_allclose(F.cross_entropy(x, t, weight=w).data, np.log(2))
    np.testing.assert_allclose(F.cross_entropy(x, t, "sum", weight=w).data, 4 * np.log(2))
    np.testing.assert_allclose(F.nll_loss(np.log(np.full((3, 2), 0.5)), t, weight=w).data,
                               np.log(2))
    # every target ignored: 0/0, as in torch
    assert np.isnan(F.cross_entropy(x, np.full(3, -100), weight=w).data)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_matches_torch_and_composes_to_cross_entropy(torch, rng, weighted,
                                                              reduction):
    a = rng.standard_normal((2, 3, 5))
    t = rng.integers(0, 5, (2, 3))
    t[0, 1] = 4
    weight = rng.uniform(0.2, 2, 5) if weighted else None
    x = Tensor(a, requires_grad=True)
    y = F.nll_loss(x, t, reduction, ignore_index=4, weight=weight)
    tx = torch.tensor(a, requires_grad=True)
    ty = torch.nn.functional.nll_loss(tx.movedim(-1, 1), torch.tensor(t),
                                      None if weight is None else torch.tensor(weight),
                                      ignore_index=4, reduction=reduction)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-12, atol=1e-14)
    # the composed twin: nll_loss(log_softmax(x)) is the fused cross_entropy
    z1, z2 = Tensor(a, requires_grad=True), Tensor(a, requires_grad=True)
    composed = F.nll_loss(F.log_softmax(z1), t, reduction, 4, weight)
    fused = F.cross_entropy(z2, t, reduction, ignore_index=4, weight=weight)
    np.testing.assert_allclose(composed.data, fused.data, rtol=1e-12)
    composed.backward(g)
    fused.backward(g)
    np.testing.assert_allclose(z1.grad.data, z2.grad.data, rtol=1e-10, atol=1e-14)


def test_nll_loss_second_order_and_gradcheck(rng):
    x = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    t = rng.integers(0, 3, 4)

    def f(x):
        with chainrule.enable_grad():
            (gx,) = chainrule.grad(F.nll_loss(F.log_softmax(x) * x, t, reduction="sum"), [x],
                                   create_graph=True)
            return (gx * gx).sum()

    report = gradcheck(f, [x], atol=1e-4)
    assert report.ok, report.explain()


def test_loss_modules_take_the_options(torch, rng):
    a, t = make_case(rng, (5, 4), "indices", -100)
    w = rng.uniform(0.5, 2, 4)
    ours = nn.CrossEntropyLoss("sum", weight=w, label_smoothing=0.1)
    theirs = torch.nn.CrossEntropyLoss(weight=torch.tensor(w), label_smoothing=0.1,
                                       reduction="sum")
    np.testing.assert_allclose(ours(a, t).data, theirs(torch.tensor(a), torch.tensor(t)),
                               rtol=1e-12)
    assert "label_smoothing=0.1" in repr(ours) and "weight" in dict(ours.named_buffers())
    logp = np.log(rng.dirichlet(np.ones(4), 5))
    t = np.where(t == -100, 0, t)
    t[0] = 2
    nll = nn.NLLLoss(weight=w, ignore_index=2)
    tnll = torch.nn.NLLLoss(weight=torch.tensor(w), ignore_index=2)
    np.testing.assert_allclose(nll(logp, t).data, tnll(torch.tensor(logp), torch.tensor(t)),
                               rtol=1e-12)
    assert "ignore_index=2" in repr(nll)


@pytest.mark.parametrize("call, error, message", [
    (lambda x, t: F.cross_entropy(x, t, label_smoothing=1.5), ValueError,
     "label_smoothing must be a number from 0.0 to 1.0, got 1.5"),
    (lambda x, t: F.cross_entropy(x, t, weight=np.ones(3)), ValueError,
     r"weight must be a vector of 4 numbers, one per class, got shape \(3,\)"),
    (lambda x, t: F.cross_entropy(x, t, weight=Tensor(np.ones(4), requires_grad=True)),
     ValueError, r"class weight is a constant.*weight.detach\(\)"),
    (lambda x, t: F.cross_entropy(x, np.full((5, 4), 0.25), ignore_index=0), ValueError,
     "ignore_index=0 applies to class indices, not to probability targets"),
    (lambda x, t: F.cross_entropy(x, np.ones((5, 3))), ValueError,
     r"probability/one-hot target of shape \(5, 3\) must have the logits' shape \(5, 4\)"),
    (lambda x, t: F.cross_entropy(x, t + 10), ValueError, "out of range for 4 classes"),
    (lambda x, t: F.nll_loss(x, t.astype(float)), TypeError,
     "target must hold integer class indices"),
    (lambda x, t: F.nll_loss(x, t[:3]), ValueError,
     r"target of shape \(3,\) does not fit scores of shape \(5, 4\)"),
    (lambda x, t: F.nll_loss(x, t, reduction="avg"), ValueError, "reduction must be one of"),
    (lambda x, t: F.nll_loss(x, t, np.ones(4)), ValueError,
     "the losses here take the reduction as their third argument"),
    (lambda x, t: F.nll_loss(x, t, ignore_index=1.0), TypeError,
     "ignore_index must be an int"),
])
def test_loss_option_errors(rng, call, error, message):
    x, t = make_case(rng, (5, 4), "indices", None)
    with pytest.raises(error, match=message):
        call(x, t)
