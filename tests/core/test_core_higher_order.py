"""Second derivatives (``create_graph=True``) versus ``torch.autograd.grad``.

For each operation f we compute the first gradient g = ∂(Σ w·f)/∂x as a recorded
tensor, then differentiate Σ v·g once more (a Hessian-vector product), in chainrule and
in PyTorch, on the same float64 inputs and the same random weights w, v.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import chainrule
import chainrule.functional as F
from chainrule import Tensor

RTOL, ATOL = 1e-9, 1e-11


def second_order_both(torch, cr_fn: Callable, th_fn: Callable,
                      arrays: list[np.ndarray], seed: int = 0) -> None:
    """Check first and second derivatives of Σ w·f(*inputs) against PyTorch."""
    rng = np.random.default_rng(seed)
    cr_in = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    th_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, out_t = cr_fn(*cr_in), th_fn(*th_in)
    w = rng.standard_normal(out.shape)
    cr_first = chainrule.grad((out * w).sum(), cr_in, create_graph=True)
    th_first = torch.autograd.grad((out_t * torch.tensor(w)).sum(), th_in, create_graph=True)
    for c, t in zip(cr_first, th_first):
        assert c.requires_grad, "create_graph=True must give differentiable gradients"
        np.testing.assert_allclose(c.data, t.detach().numpy(), rtol=RTOL, atol=ATOL)
    vs = [rng.standard_normal(a.shape) for a in arrays]
    cr_hvp_of = sum(((g * v).sum() for g, v in zip(cr_first, vs)), Tensor(0.0, dtype="f8"))
    th_hvp_of = sum((g * torch.tensor(v)).sum() for g, v in zip(th_first, vs))
    cr_second = chainrule.grad(cr_hvp_of, cr_in, allow_unused=True)
    th_second = torch.autograd.grad(th_hvp_of, th_in, allow_unused=True)
    for i, (c, t) in enumerate(zip(cr_second, th_second)):
        expected = np.zeros(arrays[i].shape) if t is None else t.numpy()
        actual = np.zeros(arrays[i].shape) if c is None else c.data
        np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL,
                                   err_msg=f"second derivative w.r.t. input {i}")


def _torch():
    """PyTorch, imported when a case runs (the ``torch`` fixture skips without it)."""
    import torch
    return torch


def _n(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _pos(shape, seed=0):
    return np.random.default_rng(seed).uniform(0.5, 2.0, shape)


_TARGET = np.array([0, 3, 1, 3])
_SOFT = np.random.default_rng(4).dirichlet(np.ones(5), 4)
_COND = np.random.default_rng(5).random((3, 4)) > 0.5

CASES = [
    ("exp", F.exp, lambda x: x.exp(), [_n((3, 4))]),
    ("log", F.log, lambda x: x.log(), [_pos((3, 4))]),
    ("sqrt", F.sqrt, lambda x: x.sqrt(), [_pos((3, 4))]),
    ("tanh", F.tanh, lambda x: x.tanh(), [_n((3, 4))]),
    ("sigmoid", F.sigmoid, lambda x: x.sigmoid(), [_n((3, 4))]),
    ("softplus", F.softplus, None, [_n((3, 4))]),
    ("sin", F.sin, lambda x: x.sin(), [_n((3, 4))]),
    ("cos", F.cos, lambda x: x.cos(), [_n((3, 4))]),
    ("erf", F.erf, lambda x: x.erf(), [_n((3, 4)) * 2]),
    ("gelu", F.gelu, lambda x: _torch().nn.functional.gelu(x), [_n((3, 4)) * 2]),
    ("gelu-tanh", lambda x: F.gelu(x, approximate="tanh"),
     lambda x: _torch().nn.functional.gelu(x, approximate="tanh"), [_n((3, 4)) * 2]),
    ("pow-scalar", lambda x: x ** 3, lambda x: x ** 3, [_n((3, 4))]),
    ("pow-scalar-fraction", lambda x: x ** -1.5, lambda x: x ** -1.5, [_pos((3, 4))]),
    ("pow", lambda a, b: a ** b, lambda a, b: a ** b, [_pos((3, 4)), _n((4,), 1)]),
    ("div", lambda a, b: a / b, lambda a, b: a / b, [_n((3, 4)), _pos((3, 1), 1)]),
    ("mul", lambda a, b: a * b, lambda a, b: a * b, [_n((3, 4)), _n((4,), 1)]),
    ("mul-same-input", lambda a: a * a * a, lambda a: a * a * a, [_n((3, 4))]),
    ("softmax", lambda x: F.softmax(x, -1), lambda x: x.softmax(-1), [_n((3, 4))]),
    ("softmax-axis0", lambda x: F.softmax(x, 0), lambda x: x.softmax(0), [_n((3, 4))]),
    ("log_softmax", F.log_softmax, lambda x: x.log_softmax(-1), [_n((3, 4))]),
    ("logsumexp", lambda x: F.logsumexp(x, 1), lambda x: x.logsumexp(1), [_n((3, 4))]),
    ("logsumexp-all", F.logsumexp, lambda x: x.logsumexp((0, 1)), [_n((3, 4))]),
    ("cross_entropy", lambda x: F.cross_entropy(x, _TARGET),
     lambda x: _torch().nn.functional.cross_entropy(
         x, _torch().tensor(_TARGET)), [_n((4, 5))]),
    ("cross_entropy-none", lambda x: F.cross_entropy(x, _TARGET, "none"),
     lambda x: _torch().nn.functional.cross_entropy(
         x, _torch().tensor(_TARGET), reduction="none"), [_n((4, 5))]),
    ("cross_entropy-soft", lambda x: F.cross_entropy(x, _SOFT, "sum"),
     lambda x: _torch().nn.functional.cross_entropy(
         x, _torch().tensor(_SOFT), reduction="sum"), [_n((4, 5))]),
    ("matmul-tanh", lambda a, b: F.tanh(a @ b), lambda a, b: (a @ b).tanh(),
     [_n((3, 4)), _n((4, 2), 1)]),
    ("var", lambda x: F.var(x, 0), lambda x: x.var(0, correction=0), [_n((3, 4))]),
    ("bce_with_logits", lambda x, t: F.binary_cross_entropy_with_logits(x, t),
     lambda x, t: _torch().nn.functional.binary_cross_entropy_with_logits(x, t),
     [_n((3, 4)), np.random.default_rng(2).uniform(0, 1, (3, 4))]),
    ("linear-tanh", lambda x, w, b: F.tanh(F.linear(x, w, b)),
     lambda x, w, b: (x @ w + b).tanh(), [_n((4, 3)), _n((3, 2), 1), _n((2,), 2)]),
    ("linear-3d-squared", lambda x, w, b: F.linear(x, w, b) ** 2,
     lambda x, w, b: (x @ w + b) ** 2, [_n((2, 4, 3)), _n((3, 2), 1), _n((2,), 2)]),
    ("maximum-squared", lambda a, b: F.maximum(a, b) ** 2,
     lambda a, b: _torch().maximum(a, b) ** 2, [_n((3, 4)), _n((4,), 1)]),
    ("max-axis-squared", lambda x: x.max(1) ** 2, lambda x: x.amax(1) ** 2, [_n((3, 4))]),
    ("abs-relu-clip", lambda x: F.abs(x) * F.relu(x) + F.clip(x, -0.5, 0.5) ** 3,
     lambda x: x.abs() * x.relu() + x.clamp(-0.5, 0.5) ** 3,
     [np.array([[-1.3, -0.2, 0.3, 0.9], [2.0, -0.7, 0.1, -0.4]])]),
    ("where-product", lambda a, b: F.where(_COND, a * b, b ** 3),
     lambda a, b: _torch().where(_torch().tensor(_COND), a * b, b ** 3),
     [_n((3, 4)), _n((4,), 1)]),
    ("concatenate", lambda a, b: F.concatenate([a * b, a ** 2], 0),
     lambda a, b: _torch().cat([a * b, a ** 2], 0), [_n((2, 3)), _n((2, 3), 1)]),
    ("mse_loss", lambda y, t: F.mse_loss(y ** 2, t), lambda y, t: (((y ** 2) - t) ** 2).mean(),
     [_n((3, 4)), _n((3, 4), 1)]),
    ("getitem-repeats", lambda x: x[np.array([0, 0, 2])] ** 2,
     lambda x: x[_torch().tensor([0, 0, 2])] ** 2, [_n((3, 4))]),
]


@pytest.mark.parametrize("cr_fn, th_fn, arrays", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_second_derivative_matches_torch(torch, cr_fn, th_fn, arrays):
    if th_fn is None:
        th_fn = torch.nn.functional.softplus
    second_order_both(torch, cr_fn, th_fn, arrays)


def test_backward_with_create_graph_then_backward_of_grad():
    """``y.backward(create_graph=True)`` then ``x.grad.backward()``: d²(x³)/dx² = 6x.

    As in PyTorch, create_graph keeps the graph, so the recorded gradient (which refers
    to the forward graph) can be backpropagated.
    """
    x = Tensor(np.array(2.0), requires_grad=True)
    (x ** 3).backward(create_graph=True)
    first = x.grad
    assert first.item() == pytest.approx(12.0) and first.requires_grad
    x.grad = None
    first.backward()
    assert x.grad.item() == pytest.approx(12.0)  # 6x at x = 2
    y = Tensor(np.array(0.3), requires_grad=True)
    y.exp().sin().backward(create_graph=True)  # uses the saved output of exp
    g = y.grad
    y.grad = None
    g.backward()
    e = np.exp(0.3)  # d/dy [cos(e^y) e^y] = -sin(e^y) e^2y + cos(e^y) e^y
    assert y.grad.item() == pytest.approx(-np.sin(e) * e * e + np.cos(e) * e)


def test_newton_method_finds_the_minima_of_a_quartic():
    """f(x) = x⁴ - 2x², f'(x) = 4x³ - 4x, f''(x) = 12x² - 4: minima at x = ±1."""

    def f(x: Tensor) -> Tensor:
        return x ** 4 - 2.0 * x ** 2

    for start, minimum in [(2.0, 1.0), (-2.0, -1.0), (0.8, 1.0), (-1.5, -1.0)]:
        x = Tensor(np.array(start), requires_grad=True)
        for _ in range(20):
            (d1,) = chainrule.grad(f(x), [x], create_graph=True)
            (d2,) = chainrule.grad(d1, [x])
            # the recorded first derivative agrees with the formula
            assert d1.item() == pytest.approx(4 * x.item() ** 3 - 4 * x.item())
            assert d2.item() == pytest.approx(12 * x.item() ** 2 - 4)
            with chainrule.no_grad():
                x = Tensor(x.data - d1.data / d2.data, requires_grad=True)
        assert x.item() == pytest.approx(minimum, abs=1e-12)


def test_hessian_vector_product_matches_torch(torch):
    """H·v for f(x) = Σ tanh(A x)² + Σ x⁴ / 4 + (x·x)·(x·b)."""
    rng = np.random.default_rng(0)
    a, b, x0, v = (rng.standard_normal(s) for s in [(4, 3), (3,), (3,), (3,)])

    def f(x, lib_a, lib_b):
        return (((lib_a @ x).tanh()) ** 2).sum() + (x ** 4).sum() / 4 + (x @ x) * (x @ lib_b)

    x = Tensor(x0.copy(), requires_grad=True)
    (g,) = chainrule.grad(f(x, Tensor(a), Tensor(b)), [x], create_graph=True)
    (hv,) = chainrule.grad((g * v).sum(), [x])
    _, expected = torch.autograd.functional.hvp(
        lambda t: f(t, torch.tensor(a), torch.tensor(b)), torch.tensor(x0), torch.tensor(v))
    np.testing.assert_allclose(hv.data, expected.numpy(), rtol=1e-10)
    # and against the full Hessian, assembled column by column from H·eᵢ
    columns = []
    for i in range(3):
        (gi,) = chainrule.grad(f(x, Tensor(a), Tensor(b)), [x], create_graph=True)
        columns.append(chainrule.grad(gi[i], [x])[0].data)
    hessian = np.stack(columns, axis=1)
    np.testing.assert_allclose(hessian, hessian.T, rtol=1e-10)  # symmetric
    np.testing.assert_allclose(hessian @ v, hv.data, rtol=1e-10)


def test_third_derivative():
    """d³(x⁵)/dx³ = 60x² by differentiating three times."""
    x = Tensor(np.array(1.5), requires_grad=True)
    (d1,) = chainrule.grad(x ** 5, [x], create_graph=True)
    (d2,) = chainrule.grad(d1, [x], create_graph=True)
    (d3,) = chainrule.grad(d2, [x])
    assert d1.item() == pytest.approx(5 * 1.5 ** 4)
    assert d2.item() == pytest.approx(20 * 1.5 ** 3)
    assert d3.item() == pytest.approx(60 * 1.5 ** 2)


def test_gradients_without_create_graph_are_not_recorded():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (g,) = chainrule.grad((x ** 3).sum(), [x])
    assert not g.requires_grad and g.creator is None
    np.testing.assert_allclose(g.data, [3.0, 12.0])
    assert x.grad is None  # chainrule.grad returns, it does not accumulate
