"""F.pad: every mode against torch (values and gradients) with odd shapes, negative
widths (cropping), central differences in float64, double backward, and the errors."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
import chainrule.functional as F
from chainrule import Tensor, gradcheck

# (input shape, padding as torch takes it, last axis first)
CASES = [
    ((5,), (2, 1)),
    ((2, 3, 5), (1, 3)),
    ((2, 3, 5), (-1, 2)),
    ((2, 3, 5), (2, -3)),
    ((1, 2, 5, 4), (1, 2, 3, 1)),
    ((1, 2, 5, 4), (0, -1, 2, 0)),
    ((2, 3, 4, 5), (1, 1, 2, 2, 1, 0)),
    ((3, 4), (3, 3, 2, 3)),
]
MODES = ["constant", "reflect", "replicate", "circular"]


def _allowed(shape, padding, mode):
    """Whether torch's limits allow this case in this mode (reflect: width < size,
    circular: width ≤ size)."""
    pairs = [padding[i:i + 2] for i in range(0, len(padding), 2)][::-1]
    sizes = shape[len(shape) - len(pairs):]
    if mode == "reflect":
        return all(max(p) < n for p, n in zip(pairs, sizes))
    if mode == "circular":
        return all(max(p) <= n for p, n in zip(pairs, sizes))
    return True


def _torch_pad(torch, x, padding, mode, value):
    """torch's pad; its non-constant modes only take 2-5 axes with the batch axes in
    front, so other shapes are given a leading axis and have it removed again."""
    if mode == "constant":
        return torch.nn.functional.pad(x, padding, value=value)
    need = len(padding) // 2 + 1
    extra = max(need - x.ndim + 1, 0) if x.ndim - len(padding) // 2 < 1 else 0
    y = x.reshape((1,) * extra + tuple(x.shape))
    y = torch.nn.functional.pad(y, padding, mode=mode)
    return y.reshape(tuple(y.shape[extra:]))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape, padding", CASES, ids=[f"{s}-{p}" for s, p in CASES])
def test_pad_matches_torch(torch, rng, shape, padding, mode):
    if not _allowed(shape, padding, mode):
        pytest.skip("beyond the mode's limit (tested in test_pad_limits)")
    a = rng.standard_normal(shape)
    value = 1.5 if mode == "constant" else None
    x = Tensor(a, requires_grad=True)
    y = F.pad(x, padding, mode, value)
    tx = torch.tensor(a, requires_grad=True)
    ty = _torch_pad(torch, tx, padding, mode, value or 0.0)
    np.testing.assert_array_equal(y.data, ty.detach().numpy())
    g = rng.standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("mode", MODES)
def test_pad_gradcheck_and_double_backward(rng, mode):
    x = Tensor(rng.standard_normal((2, 3, 5, 4)), requires_grad=True)
    padding = (2, -1, 1, 3)
    report = gradcheck(lambda x: F.pad(x, padding, mode), [x])
    assert report.ok, report.explain()
    # through the backward: d/dx Σ(∂L/∂x)² for L = Σ pad(x)³ (pad's adjoint, then pad)
    report = gradcheck(lambda x: _grad_squared(lambda x: (F.pad(x, padding, mode) ** 3)
                                               .sum(), x), [x], atol=1e-4)
    assert report.ok, report.explain()


def _grad_squared(loss, x):
    with chainrule.enable_grad():  # gradcheck evaluates its function under no_grad
        (gx,) = chainrule.grad(loss(x), [x], create_graph=True)
        return (gx * gx).sum()


def test_pad_keeps_the_dtype_and_crops_to_nothing():
    x = Tensor(np.arange(12, dtype=np.float32).reshape(3, 4), requires_grad=True)
    y = F.pad(x, (1, 1), value=-1)
    assert y.dtype == np.float32 and y.shape == (3, 6)
    assert F.pad(x, (-2, -2)).shape == (3, 0)
    assert F.pad(np.arange(4), (1, 0), value=7).data.tolist() == [7, 0, 1, 2, 3]
    assert F.pad(x, (0, 0)) is x


def test_pad_limits(torch):
    x = Tensor(np.ones((2, 4)))
    F.pad(x, (3, 3), "reflect")  # widths up to size - 1
    F.pad(x, (4, 4), "circular")  # up to the size
    F.pad(x, (9, 9), "replicate")  # any
    with pytest.raises(ValueError, match=r"mode='reflect' cannot pad axis 1 by \(4, 0\).*"
                                         r"at most 3"):
        F.pad(x, (4, 0), "reflect")
    with pytest.raises(ValueError, match="at most 4"):
        F.pad(x, (0, 5), "circular")
    with pytest.raises(ValueError, match=r"crops more than its 4 places"):
        F.pad(x, (-3, -2))


@pytest.mark.parametrize("args, message", [
    (((1,),), "even length"),
    (((1, 1, 1, 1, 1, 1),), r"names 3 axes, but the input of shape \(2, 4\) has only 2"),
    (((1.5, 1),), "tuple of ints"),
    ((3,), "tuple of ints"),
    (((1, 1), "wrap"), r"mode must be one of \('constant', 'reflect', 'replicate', "
                       r"'circular'\), got 'wrap'"),
    (((1, 1), "reflect", 0.0), "only used by mode='constant'"),
    (((1, 1), "constant", "0"), "value must be a number"),
])
def test_pad_bad_arguments(args, message):
    with pytest.raises((TypeError, ValueError), match=message):
        F.pad(Tensor(np.ones((2, 4))), *args)


@pytest.mark.parametrize("mode, padding", [("replicate", (2, -3)), ("replicate", (-4, 3)),
                                           ("reflect", (-3, 1)), ("circular", (-1, 1))])
def test_pad_crops_past_the_other_side_as_torch(torch, rng, mode, padding):
    """A side may be cropped further than the other is padded: the output reads the
    input by torch's index rule (replicate (2, -3) of [a b c] gives [a a])."""
    a = rng.standard_normal((2, 3, 3))
    x = Tensor(a, requires_grad=True)
    tx = torch.tensor(a, requires_grad=True)
    y = F.pad(x, padding, mode)
    ty = torch.nn.functional.pad(tx, padding, mode=mode)
    np.testing.assert_array_equal(y.data, ty.detach().numpy())
    g = rng.standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-12)


def test_circular_pad_refuses_to_wrap_beyond_the_kept_part():
    """torch returns uninitialised memory here (it copies from places not yet filled);
    chainrule refuses."""
    with pytest.raises(ValueError, match=r"mode='circular' cannot pad axis 2 by \(1, -3\)"
                                         r".*at most 0 \(the axis keeps 0 of its 3 places\)"):
        F.pad(np.ones((1, 4, 3)), (1, -3), "circular")
