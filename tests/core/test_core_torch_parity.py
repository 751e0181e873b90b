"""Forward values and gradients versus PyTorch on the same float64 inputs.

Each case feeds the same arrays to a chainrule function and to its PyTorch equivalent,
backpropagates the same random upstream gradient through both, and compares the
outputs and every input's gradient. Non-differentiable arguments (targets, masks,
axes) are fixed inside the two functions.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import chainrule.functional as F
from chainrule import Tensor

RTOL, ATOL = 1e-10, 1e-12


def run_both(torch, cr_fn: Callable, th_fn: Callable, arrays: list[np.ndarray],
             seed: int = 0) -> None:
    """Compare forward and backward of ``cr_fn`` and ``th_fn`` on ``arrays``."""
    cr_in = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    th_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = cr_fn(*cr_in)
    expected = th_fn(*th_in)
    if isinstance(expected, (tuple, list)):  # split: compare a weighted concatenation
        raise TypeError("return one tensor from each function")
    assert out.shape == tuple(expected.shape)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=RTOL, atol=ATOL)
    upstream = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(upstream)
    expected.backward(torch.tensor(upstream))
    for i, (c, t) in enumerate(zip(cr_in, th_in)):
        if t.grad is None:
            assert c.grad is None or not np.any(c.grad.data), f"input {i}"
            continue
        assert c.grad is not None, f"input {i} got no gradient"
        assert c.grad.shape == c.shape and c.grad.dtype == np.float64
        np.testing.assert_allclose(c.grad.data, t.grad.numpy(), rtol=RTOL, atol=ATOL,
                                   err_msg=f"gradient of input {i}")


def _t():
    """PyTorch, imported when a case runs (the ``torch`` fixture skips without it)."""
    import torch
    return torch


def _torch_index(index):
    """The same index for a torch tensor: NumPy arrays become torch tensors."""
    if isinstance(index, tuple):
        return tuple(_torch_index(i) for i in index)
    return _t().as_tensor(index) if isinstance(index, np.ndarray) else index


def _r(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def normal(shape, seed=0):
    return _r(seed).standard_normal(shape)


def positive(shape, seed=0):
    return _r(seed).uniform(0.3, 2.0, shape)


CASES: list[tuple[str, Callable, Callable, Callable]] = []  # id, cr, torch, arrays()


def case(case_id: str, cr_fn: Callable, th_fn: Callable, arrays: Callable) -> None:
    CASES.append((case_id, cr_fn, th_fn, arrays))


PAIRS = [((3, 4), (4,)), ((2, 1, 3), (4, 1)), ((), (2, 3)), ((2, 3), ())]
for _sa, _sb in PAIRS:
    _id = f"{_sa}&{_sb}".replace(" ", "")
    case(f"add-{_id}", lambda a, b: a + b, lambda a, b: a + b,
         lambda sa=_sa, sb=_sb: [normal(sa), normal(sb, 1)])
    case(f"sub-{_id}", lambda a, b: a - b, lambda a, b: a - b,
         lambda sa=_sa, sb=_sb: [normal(sa), normal(sb, 1)])
    case(f"mul-{_id}", lambda a, b: a * b, lambda a, b: a * b,
         lambda sa=_sa, sb=_sb: [normal(sa), normal(sb, 1)])
    case(f"div-{_id}", lambda a, b: a / b, lambda a, b: a / b,
         lambda sa=_sa, sb=_sb: [normal(sa), positive(sb, 1)])
    case(f"pow-{_id}", lambda a, b: a ** b, lambda a, b: a ** b,
         lambda sa=_sa, sb=_sb: [positive(sa), normal(sb, 1)])
    case(f"maximum-{_id}", F.maximum, lambda a, b: a.maximum(b),
         lambda sa=_sa, sb=_sb: [normal(sa), normal(sb, 1)])
    case(f"minimum-{_id}", F.minimum, lambda a, b: a.minimum(b),
         lambda sa=_sa, sb=_sb: [normal(sa), normal(sb, 1)])
    _cond = _r(5).random(np.broadcast_shapes(_sa, _sb)) > 0.5
    case(f"where-{_id}", lambda a, b, c=_cond: F.where(c, a, b),
         lambda a, b, c=_cond: _t().where(_t().tensor(c), a, b),
         lambda sa=_sa, sb=_sb: [normal(sa), normal(sb, 1)])

# constants and numbers on either side
case("rsub-number", lambda x: 2.0 - x, lambda x: 2.0 - x, lambda: [normal((3,))])
case("rdiv-number", lambda x: 2.0 / x, lambda x: 2.0 / x, lambda: [positive((3,))])
case("rpow-number", lambda x: 2.0 ** x, lambda x: 2.0 ** x, lambda: [normal((3,))])
for _c in [2, 3, 0.5, -1.5, 0]:
    case(f"pow-scalar-{_c}", lambda x, c=_c: x ** c, lambda x, c=_c: x ** c,
         lambda: [positive((3, 4))])
case("pow-scalar-0-at-zero", lambda x: x ** 0, lambda x: x ** 0,
     lambda: [np.array([0.0, 1.0, -2.0])])
case("pow-zero-base", lambda a, b: a ** b, lambda a, b: a ** b,  # d(0^b)/db = 0 for b > 0
     lambda: [np.array([0.0, 1.5, 0.0]), np.array([2.0, 0.5, 1.0])])
case("neg", lambda x: -x, lambda x: -x, lambda: [normal((3,))])

# unary functions; relu and abs at 0, clip at its bounds: PyTorch's conventions
UNARY = [
    ("exp", F.exp, "exp", normal), ("log", F.log, "log", positive),
    ("sqrt", F.sqrt, "sqrt", positive), ("tanh", F.tanh, "tanh", normal),
    ("sigmoid", F.sigmoid, "sigmoid", normal), ("sin", F.sin, "sin", normal),
    ("cos", F.cos, "cos", normal), ("abs", F.abs, "abs", normal),
    ("relu", F.relu, "relu", normal), ("erf", F.erf, "erf", lambda s: normal(s) * 3),
]
for _name, _cr, _th, _gen in UNARY:
    case(_name, _cr, lambda x, n=_th: getattr(x, n)(), lambda g=_gen: [g((3, 4))])
_kinks = np.array([-1.0, 0.0, 0.0, 2.0, -0.5, 0.7])
case("relu-at-zero", F.relu, lambda x: x.relu(), lambda: [_kinks])
case("abs-at-zero", F.abs, lambda x: x.abs(), lambda: [_kinks])
case("leaky_relu", lambda x: F.leaky_relu(x, 0.1),
     lambda x: _t().nn.functional.leaky_relu(x, 0.1), lambda: [_kinks])
# GELU in both forms, on values reaching into both tails (|x| up to 9: Φ ≈ 0 or 1)
_wide = np.concatenate([normal((20,)) * 3, [-9.0, -5.0, -0.5, 0.0, 0.5, 5.0, 9.0]])
case("gelu", F.gelu, lambda x: _t().nn.functional.gelu(x), lambda: [_wide])
case("gelu-tanh", lambda x: F.gelu(x, approximate="tanh"),
     lambda x: _t().nn.functional.gelu(x, approximate="tanh"), lambda: [_wide])
case("softplus", F.softplus, lambda x: _t().nn.functional.softplus(x),
     lambda: [normal((3, 4)) * 5])
case("clip-at-bounds", lambda x: F.clip(x, -0.5, 0.7), lambda x: x.clamp(-0.5, 0.7),
     lambda: [_kinks])
case("clamp-method-one-sided", lambda x: x.clamp(min=0.0), lambda x: x.clamp(min=0.0),
     lambda: [normal((3, 4))])

# reductions
for _axis in [None, 0, -1, (0, 2), (-1, -3), (1,)]:
    for _keep in (False, True):
        _id = f"axis={_axis}-keep={_keep}".replace(" ", "")
        _dim = _axis  # torch spells the same thing dim=
        case(f"sum-{_id}", lambda x, a=_axis, k=_keep: x.sum(a, keepdims=k),
             (lambda x, a=_dim, k=_keep: x.sum() if a is None and not k
              else x.sum(dim=a, keepdim=k)), lambda: [normal((2, 3, 4))])
        case(f"mean-{_id}", lambda x, a=_axis, k=_keep: x.mean(a, keepdims=k),
             (lambda x, a=_dim, k=_keep: x.mean() if a is None and not k
              else x.mean(dim=a, keepdim=k)), lambda: [normal((2, 3, 4))])
        case(f"var-{_id}", lambda x, a=_axis, k=_keep: x.var(a, keepdims=k),
             lambda x, a=_dim, k=_keep: x.var(dim=a, keepdim=k, correction=0),
             lambda: [normal((2, 3, 4))])
        _all = (0, 1, 2) if _axis is None else _axis
        case(f"logsumexp-{_id}", lambda x, a=_axis, k=_keep: F.logsumexp(x, a, k),
             lambda x, a=_all, k=_keep: x.logsumexp(dim=a, keepdim=k),
             lambda: [normal((2, 3, 4))])
        # max/min with many ties (values from {0,1,2}): ties share the gradient
        case(f"max-ties-{_id}", lambda x, a=_axis, k=_keep: x.max(a, keepdims=k),
             lambda x, a=_all, k=_keep: x.amax(dim=a, keepdim=k),
             lambda: [_r(3).integers(0, 3, (2, 3, 4)).astype(np.float64)])
        case(f"min-ties-{_id}", lambda x, a=_axis, k=_keep: x.min(a, keepdims=k),
             lambda x, a=_all, k=_keep: x.amin(dim=a, keepdim=k),
             lambda: [_r(4).integers(0, 3, (2, 3, 4)).astype(np.float64)])
case("var-ddof=1", lambda x: F.var(x, 1, ddof=1), lambda x: x.var(dim=1, correction=1),
     lambda: [normal((3, 4))])
_tie_values = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, -1.0]])
case("maximum-ties", F.maximum, lambda a, b: a.maximum(b),
     lambda: [_tie_values, np.array([3.0, 2.0, 0.0, 0.0])])
case("minimum-ties", F.minimum, lambda a, b: a.minimum(b),
     lambda: [_tie_values, np.array([3.0, 2.0, 0.0, 0.0])])

# matmul in every NumPy case, and the fused affine map (W is (in, out))
for _sa, _sb in [((3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)),
                 ((3, 4), (2, 4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)),
                 ((2, 3, 4), (4,)), ((4,), (2, 4, 5))]:
    case(f"matmul-{_sa}@{_sb}".replace(" ", ""), lambda a, b: a @ b, lambda a, b: a @ b,
         lambda sa=_sa, sb=_sb: [normal(sa), normal(sb, 1)])
for _xs in [(5, 3), (2, 5, 3), (3,)]:
    case(f"linear-x{_xs}".replace(" ", ""), F.linear, lambda x, w, b: x @ w + b,
         lambda xs=_xs: [normal(xs), normal((3, 4), 1), normal((4,), 2)])
case("linear-no-bias", F.linear, lambda x, w: x @ w,
     lambda: [normal((5, 3)), normal((3, 4), 1)])

# shape operations and indexing
SHAPE = [
    ("reshape", lambda x: x.reshape(4, -1), lambda x: x.reshape(4, -1)),
    ("transpose", lambda x: F.transpose(x, (1, 0, 2)), lambda x: x.permute(1, 0, 2)),
    ("T", lambda x: x.T, lambda x: x.permute(2, 1, 0)),
    ("mT", lambda x: x.mT, lambda x: x.mT),
    ("permute", lambda x: x.permute(2, 0, 1), lambda x: x.permute(2, 0, 1)),
    ("swapaxes", lambda x: F.swapaxes(x, 0, 2), lambda x: x.swapaxes(0, 2)),
    ("flatten", F.flatten, lambda x: x.flatten()),
    ("flatten-1", lambda x: F.flatten(x, 1), lambda x: x.flatten(1)),
    ("unsqueeze", lambda x: x.unsqueeze(1), lambda x: x.unsqueeze(1)),
    ("expand", lambda x: x.unsqueeze(0).expand(3, -1, -1, -1),
     lambda x: x.unsqueeze(0).expand(3, -1, -1, -1)),
    ("broadcast_to", lambda x: F.broadcast_to(x, (2, 2, 3, 4)),
     lambda x: x.broadcast_to((2, 2, 3, 4))),
    ("split", lambda x: F.concatenate([p * (i + 1.0) for i, p in
                                       enumerate(F.split(x, [1, 3], axis=2))], 2),
     lambda x: _t().cat([p * (i + 1.0) for i, p in
                                        enumerate(x.split([1, 2, 1], dim=2))], 2)),
    ("softmax-0", lambda x: F.softmax(x, 0), lambda x: x.softmax(0)),
    ("softmax-1", lambda x: x.softmax(1), lambda x: x.softmax(1)),
    ("softmax--1", F.softmax, lambda x: x.softmax(-1)),
    ("log_softmax-0", lambda x: F.log_softmax(x, 0), lambda x: x.log_softmax(0)),
    ("log_softmax--1", F.log_softmax, lambda x: x.log_softmax(-1)),
]
for _id, _cr, _th in SHAPE:
    case(_id, _cr, _th, lambda: [normal((2, 3, 4))])
case("squeeze", lambda x: x.squeeze(), lambda x: x.squeeze(), lambda: [normal((1, 3, 1, 2))])
case("squeeze-axis", lambda x: x.squeeze(2), lambda x: x.squeeze(2),
     lambda: [normal((1, 3, 1, 2))])
case("concatenate", lambda a, b: F.concatenate([a, b, a], axis=1),
     lambda a, b: _t().cat([a, b, a], 1),
     lambda: [normal((2, 1)), normal((2, 3), 1)])
case("stack", lambda a, b: F.stack([a, b], axis=-1),
     lambda a, b: _t().stack([a, b], -1),
     lambda: [normal((2, 3)), normal((2, 3), 1)])
_mask = _r(9).random((4, 5)) > 0.4
for _id, _index in [("slice", (slice(1, 3), slice(None, None, 2))), ("int", -1),
                    ("int-array-repeats", np.array([0, 2, 0, 0])),
                    ("pairs-repeat", (np.array([0, 0, 3]), np.array([1, 1, 4]))),
                    ("bool-mask", _mask), ("bool-rows", np.array([True, False, True, True])),
                    ("mixed", (np.array([1, 1, 3]), slice(None, 3))),
                    ("ellipsis-none", (Ellipsis, None, 2))]:
    case(f"getitem-{_id}", lambda x, i=_index: x[i],
         lambda x, i=_index: x[_torch_index(i)],
         lambda: [normal((4, 5))])


# losses
def _torch_F():
    return _t().nn.functional


_idx = _r(2).integers(0, 5, 4)
_idx3 = _r(2).integers(0, 5, (2, 3))
_onehot = np.eye(5)[_idx]
_soft = _r(2).dirichlet(np.ones(5), 4)
_unnormalised = _r(2).uniform(0, 1, (4, 5))  # rows not summing to 1: torch allows it
for _red in ["mean", "sum", "none"]:
    case(f"cross_entropy-indices-{_red}", lambda x, r=_red: F.cross_entropy(x, _idx, r),
         lambda x, r=_red: _torch_F().cross_entropy(x, _t().tensor(_idx),
                                                    reduction=r),
         lambda: [normal((4, 5))])
    case(f"cross_entropy-3d-{_red}", lambda x, r=_red: F.cross_entropy(x, _idx3, r),
         lambda x, r=_red: _torch_F().cross_entropy(
             x.permute(0, 2, 1), _t().tensor(_idx3), reduction=r),
         lambda: [normal((2, 3, 5))])
    for _tid, _tgt in [("one-hot", _onehot), ("probabilities", _soft),
                       ("unnormalised", _unnormalised)]:
        case(f"cross_entropy-{_tid}-{_red}",
             lambda x, r=_red, t=_tgt: F.cross_entropy(x, t, r),
             lambda x, r=_red, t=_tgt: _torch_F().cross_entropy(
                 x, _t().tensor(t), reduction=r),
             lambda: [normal((4, 5))])
    case(f"mse_loss-{_red}", lambda y, t, r=_red: F.mse_loss(y, t, r),
         lambda y, t, r=_red: _torch_F().mse_loss(y, t, reduction=r),
         lambda: [normal((3, 4)), normal((3, 4), 1)])
    case(f"bce_with_logits-{_red}",
         lambda x, t, r=_red: F.binary_cross_entropy_with_logits(x, t, r),
         lambda x, t, r=_red: _torch_F().binary_cross_entropy_with_logits(x, t, reduction=r),
         lambda: [normal((3, 4)) * 3, _r(1).uniform(0, 1, (3, 4))])
    case(f"bce-{_red}", lambda p, t, r=_red: F.binary_cross_entropy(p, t, r),
         lambda p, t, r=_red: _torch_F().binary_cross_entropy(p, t, reduction=r),
         lambda: [_r(0).uniform(0.05, 0.95, (3, 4)), _r(1).uniform(0, 1, (3, 4))])


@pytest.mark.parametrize("cr_fn, th_fn, arrays", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_matches_torch(torch, cr_fn, th_fn, arrays):
    run_both(torch, cr_fn, th_fn, arrays())


def test_float32_forward_and_gradients_match_torch(torch):
    """A small network in float32: values and gradients agree to float32 precision."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in [(8, 5), (5, 6), (6,),
                                                                   (6, 3)]]
    target = rng.integers(0, 3, 8)
    cr = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    th = [torch.tensor(a, requires_grad=True) for a in arrays]
    x, w1, b1, w2 = cr
    loss = F.cross_entropy(F.tanh(F.linear(x, w1, b1)).relu() @ w2, target)
    xt, w1t, b1t, w2t = th
    loss_t = torch.nn.functional.cross_entropy(torch.tanh(xt @ w1t + b1t).relu() @ w2t,
                                               torch.tensor(target))
    loss.backward()
    loss_t.backward()
    assert loss.dtype == np.float32
    np.testing.assert_allclose(loss.item(), loss_t.item(), rtol=1e-5)
    for c, t in zip(cr, th):
        assert c.grad.dtype == np.float32
        np.testing.assert_allclose(c.grad.data, t.grad.numpy(), rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------- ties
def test_max_ties_share_the_gradient_equally():
    """The documented rule: the k tied maxima each receive 1/k of the gradient."""
    x = Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [0.0, 5.0, -1.0]]),
               requires_grad=True)
    x.max(axis=1).sum().backward()
    expected = [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3], [0, 1, 0]]
    np.testing.assert_allclose(x.grad.data, expected)
    x.grad = None
    x.max().backward()  # a single winner over all axes
    np.testing.assert_allclose(x.grad.data, [[0, 0, 0], [0, 0, 0], [0, 1, 0]])


def test_maximum_and_minimum_ties_split_half_and_half():
    a = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = Tensor(np.array([1.0, 5.0, 0.0]), requires_grad=True)
    F.maximum(a, b).sum().backward()
    np.testing.assert_allclose(a.grad.data, [0.5, 0.0, 1.0])
    np.testing.assert_allclose(b.grad.data, [0.5, 1.0, 0.0])
    a.grad = b.grad = None
    F.minimum(a, b).sum().backward()
    np.testing.assert_allclose(a.grad.data, [0.5, 1.0, 0.0])
    np.testing.assert_allclose(b.grad.data, [0.5, 0.0, 1.0])


def test_dropout_mask_scaling_and_evaluation_mode():
    """Inverted dropout (no torch equivalent with the same random numbers)."""
    x = Tensor(np.ones((200, 50)), requires_grad=True)
    y = F.dropout(x, 0.25, rng=np.random.default_rng(0))
    kept = y.data != 0
    assert 0.2 < 1 - kept.mean() < 0.3  # about p of the values are zeroed
    np.testing.assert_allclose(y.data[kept], 1 / 0.75)  # the rest scaled by 1/(1-p)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, kept / 0.75)  # same mask, same scale
    again = F.dropout(x, 0.25, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(again.data, y.data)  # the rng fixes the mask
    assert F.dropout(x, 0.25, training=False) is x
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="dropout"):
            F.dropout(x, bad)
