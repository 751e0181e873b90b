"""The backward engine and the Tensor class: the chain rule on worked examples, graph
bookkeeping (accumulation, retain_graph, no_grad, retain_grad), dtypes, construction,
attributes and Python/NumPy interoperability."""

from __future__ import annotations

import gc
import operator
import weakref

import numpy as np
import pytest

import chainrule
import chainrule.functional as F
from chainrule import Tensor, enable_grad, is_grad_enabled, no_grad

# --------------------------------------------------------------------------- worked examples


def test_shopping_example():
    """Buying 2 apples at 100 each with 10 % tax: total = price · count · tax."""
    price = Tensor(100.0, requires_grad=True)
    count = Tensor(2.0, requires_grad=True)
    tax = Tensor(1.1, requires_grad=True)
    subtotal = price * count
    subtotal.retain_grad()
    total = subtotal * tax
    assert total.item() == pytest.approx(220.0)
    total.backward()
    # ∂total/∂subtotal = tax; ∂total/∂price = tax·count; ∂total/∂count = tax·price;
    # ∂total/∂tax = subtotal = price·count
    assert price.grad.item() == pytest.approx(2.2)
    assert count.grad.item() == pytest.approx(110.0)
    assert tax.grad.item() == pytest.approx(200.0)
    assert subtotal.grad.item() == pytest.approx(1.1)


def test_apples_and_oranges_every_partial_derivative():
    """apples 100 × 2, oranges 150 × 3, tax 1.1.

    Forward: apple_cost = 100·2 = 200, orange_cost = 150·3 = 450,
    subtotal = 200 + 450 = 650, total = 650 · 1.1 = 715.

    Backward, node by node (upstream gradient times the local derivative):
      ∂total/∂total       = 1
      ∂total/∂tax         = subtotal                     = 650
      ∂total/∂subtotal    = tax                          = 1.1
      ∂total/∂apple_cost  = 1.1 · ∂(a+o)/∂a = 1.1 · 1    = 1.1
      ∂total/∂orange_cost = 1.1 · 1                      = 1.1
      ∂total/∂apple_price = 1.1 · apple_count            = 1.1 · 2   = 2.2
      ∂total/∂apple_count = 1.1 · apple_price            = 1.1 · 100 = 110
      ∂total/∂orange_price = 1.1 · orange_count          = 1.1 · 3   = 3.3
      ∂total/∂orange_count = 1.1 · orange_price          = 1.1 · 150 = 165
    """
    leaves = {name: Tensor(np.array(value), requires_grad=True) for name, value in
              [("apple_price", 100.0), ("apple_count", 2.0), ("orange_price", 150.0),
               ("orange_count", 3.0), ("tax", 1.1)]}
    apple_cost = leaves["apple_price"] * leaves["apple_count"]
    orange_cost = leaves["orange_price"] * leaves["orange_count"]
    subtotal = apple_cost + orange_cost
    total = subtotal * leaves["tax"]
    for t in (apple_cost, orange_cost, subtotal, total):
        t.retain_grad()
    assert total.item() == pytest.approx(715.0)
    total.backward()
    tax, price_a, count_a = 1.1, 100.0, 2.0
    price_o, count_o = 150.0, 3.0
    expected = {
        "apple_price": tax * count_a, "apple_count": tax * price_a,
        "orange_price": tax * count_o, "orange_count": tax * price_o,
        "tax": price_a * count_a + price_o * count_o,
    }
    for name, value in expected.items():
        assert leaves[name].grad.item() == pytest.approx(value), name
    assert total.grad.item() == 1.0
    assert subtotal.grad.item() == pytest.approx(tax)
    assert apple_cost.grad.item() == pytest.approx(tax)
    assert orange_cost.grad.item() == pytest.approx(tax)
    assert [expected[k] for k in ("apple_price", "apple_count", "orange_price",
                                  "orange_count", "tax")] == pytest.approx(
        [2.2, 110.0, 3.3, 165.0, 650.0])


def test_very_deep_chain_has_no_recursion_limit():
    """100,000 multiplications by c: d(x·cᴺ)/dx = cᴺ ≈ e for c = 1 + 1e-5."""
    x = Tensor(np.array(1.0), requires_grad=True)
    c = 1.0 + 1e-5
    y = x
    for _ in range(100_000):
        y = y * c
    y.backward()
    assert x.grad.item() == pytest.approx(c ** 100_000, rel=1e-9)
    # and a deep graph that is never backpropagated can be dropped without a crash
    z = x
    for _ in range(100_000):
        z = z + 1.0
    del z, y
    gc.collect()


def test_node_used_many_times_receives_the_sum():
    x = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    total = Tensor(np.zeros(2))
    for i in range(1, 51):
        total = total + x * float(i)
    total.sum().backward()
    np.testing.assert_allclose(x.grad.data, [sum(range(1, 51))] * 2)
    x.grad = None
    (x * x * x).sum().backward()  # the same tensor three times in one product
    np.testing.assert_allclose(x.grad.data, 3 * x.data ** 2)
    x.grad = None
    h = x.exp()  # an intermediate used on two paths, one of them broadcast
    (h * 2.0 + h.sum()).sum().backward()  # d/dh = 2 + 2 per element
    np.testing.assert_allclose(x.grad.data, 4.0 * np.exp(x.data))


# --------------------------------------------------------------------------- accumulation
class Probe(chainrule.Function):
    """y = x, noting each time its backward runs and the gradient it was given."""

    def __init__(self, name: str, log: list) -> None:
        self.label, self.log = name, log

    def forward(self, x):
        return x.copy()

    def backward(self, g):
        self.log.append((self.label, g.item()))
        return g


def test_each_operation_runs_once_with_the_gradients_of_all_its_uses():
    # a is used by the next operation and again by the very last one, so a pass that
    # processed a's operation as soon as one use had sent its gradient would be wrong
    log: list = []
    x = Tensor(2.0, requires_grad=True)
    a = Probe("a", log)(x)
    b = Probe("b", log)(a * 3.0)
    c = Probe("c", log)(b * b)
    y = c + a * 5.0  # dy/da = 5 + 3·2b = 5 + 6·6 = 41
    y.backward()
    assert log == [("c", 1.0), ("b", 12.0), ("a", 41.0)]  # newest first, each once
    assert x.grad.item() == 41.0


def test_operations_recorded_during_backward_do_not_disturb_the_pass():
    # create_graph records the backward's own operations (newer sequence numbers)
    # while the pass is running; the first derivative must not change
    x = Tensor(1.5, requires_grad=True)
    y = (x * x).exp() * x.sin()
    (g,) = chainrule.grad(y, [x], create_graph=True)
    expected = np.exp(1.5 ** 2) * (2 * 1.5 * np.sin(1.5) + np.cos(1.5))
    np.testing.assert_allclose(g.item(), expected, rtol=1e-6)
    (gg,) = chainrule.grad(g, [x])
    torch = pytest.importorskip("torch")
    xt = torch.tensor(1.5, dtype=torch.float32, requires_grad=True)
    (gt,) = torch.autograd.grad((xt * xt).exp() * xt.sin(), [xt], create_graph=True)
    (ggt,) = torch.autograd.grad(gt, [xt])
    np.testing.assert_allclose(gg.item(), ggt.item(), rtol=1e-5)


def test_repeated_backward_accumulates_and_zero_grad_resets():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    for _ in range(3):
        (w * w).sum().backward()  # a fresh graph each time
    np.testing.assert_allclose(w.grad.data, 3 * 2 * w.data)
    w.zero_grad()
    assert w.grad is None
    (w * 3.0).sum().backward()
    np.testing.assert_allclose(w.grad.data, [3.0, 3.0])
    w.grad = None
    (w * 5.0).sum().backward()
    np.testing.assert_allclose(w.grad.data, [5.0, 5.0])


def test_backward_twice_needs_retain_graph():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()
    x.grad = None
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.data, 3 * (np.exp(x.data) * (1 + x.data)))


def test_intermediates_have_no_grad_unless_retained():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * 2.0
    kept = h.exp()
    kept.retain_grad()
    kept.sum().backward()
    assert h.grad is None
    np.testing.assert_allclose(kept.grad.data, [1.0, 1.0])
    np.testing.assert_allclose(x.grad.data, 2 * np.exp(2 * x.data))
    with pytest.raises(ValueError, match="does not require grad"):
        Tensor([1.0]).retain_grad()


def test_leaf_grads_never_share_memory():
    """a + b hands the same upstream gradient to both: each .grad must be its own."""
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    c = Tensor(np.ones(()), requires_grad=True)  # broadcast: gets a summed gradient
    (a + b + c).sum().backward()
    assert not np.shares_memory(a.grad.data, b.grad.data)
    a.grad.data[0] = 100.0
    np.testing.assert_array_equal(b.grad.data, [1.0, 1.0, 1.0])
    assert c.grad.item() == 3.0
    d = Tensor(np.ones((2, 3)), requires_grad=True)
    e = Tensor(np.ones((2, 3)), requires_grad=True)
    (d.reshape(3, 2).T.reshape(2, 3) + e).sum().backward()  # views of one gradient
    assert d.grad.data.flags.writeable and e.grad.data.flags.writeable
    d.grad.data *= 0.0  # in-place, as gradient clipping does
    np.testing.assert_array_equal(e.grad.data, np.ones((2, 3)))


def test_retained_intermediate_and_leaf_do_not_share_their_grad():
    a = Tensor(np.ones(3), requires_grad=True)
    c = Tensor(np.ones(3), requires_grad=True)
    h = a * 2.0
    h.retain_grad()
    (h + c).sum().backward()  # Add hands the same gradient to h and to c
    assert not np.shares_memory(h.grad.data, c.grad.data)
    c.grad.data[:] = 7.0
    np.testing.assert_array_equal(h.grad.data, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(a.grad.data, [2.0, 2.0, 2.0])


def test_repeated_indices_accumulate():
    x = Tensor(np.arange(4.0), requires_grad=True)
    x[np.array([0, 0, 3, 0])].sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 0.0, 0.0, 1.0])
    x.grad = None
    (x[[1, 1]] * Tensor(np.array([2.0, 5.0]))).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 7.0, 0.0, 0.0])


def test_gradient_passed_to_backward_is_not_aliased_by_grad():
    """The upstream gradient given by the user stays the user's: clipping x.grad in
    place must not change it."""
    upstream = np.full(3, 2.0)
    a = Tensor(np.ones(3), requires_grad=True)
    (a + 1.0).backward(upstream)
    a.grad.data[:] = 0.0
    np.testing.assert_array_equal(upstream, [2.0, 2.0, 2.0])
    leaf = Tensor(np.ones(3), requires_grad=True)
    leaf.backward(upstream)
    assert not np.shares_memory(leaf.grad.data, upstream)
    given = Tensor(np.full(3, 4.0))
    b = Tensor(np.ones(3), requires_grad=True)
    (b * 1.0 + 0.0).reshape(3).backward(given)
    b.grad.data[:] = 0.0
    np.testing.assert_array_equal(given.data, [4.0, 4.0, 4.0])


def test_grad_argument_of_backward():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    (x * x).backward(np.array([1.0, 0.0, -1.0]))
    np.testing.assert_allclose(x.grad.data, [2.0, 0.0, -6.0])
    with pytest.raises(ValueError, match=r"\(3,\)"):
        (x * x).backward(np.ones(2))


# --------------------------------------------------------------------------- grad mode
def test_no_grad_records_nothing():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    assert is_grad_enabled()
    with no_grad():
        assert not is_grad_enabled()
        y = x * 2.0 + x.exp()
        with enable_grad():
            assert is_grad_enabled()
            z = x * 3.0
        assert not is_grad_enabled()
    assert is_grad_enabled()
    assert y.creator is None and not y.requires_grad and y.is_leaf
    assert z.creator is not None and z.requires_grad
    with pytest.raises(ValueError, match="does not require grad"):
        y.sum().backward()

    @no_grad()
    def predict(t):
        assert not is_grad_enabled()
        return t * 2.0

    out = predict(x)
    assert out.creator is None and not out.requires_grad
    assert is_grad_enabled()

    @enable_grad()
    def train_step(t):
        return t * 2.0

    with no_grad():
        assert train_step(x).requires_grad


def test_grad_mode_is_restored_after_an_exception():
    with pytest.raises(KeyError):
        with no_grad():
            raise KeyError("boom")
    assert is_grad_enabled()
    with chainrule.set_grad_enabled(False):
        assert not is_grad_enabled()
    assert is_grad_enabled()


def test_backward_without_grad_on_a_non_scalar_names_the_shape():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        (x * 2.0).backward()
    (x * 2.0).mean().backward()  # a single value is fine, whatever its ndim
    (x.sum(keepdims=True) * 1.0).backward()
    np.testing.assert_allclose(x.grad.data, np.full((2, 3), 2.0 / 6 + 1.0))


def test_backward_on_a_tensor_that_does_not_require_grad_raises():
    x = Tensor(np.ones(3))
    with pytest.raises(ValueError, match="does not require grad"):
        (x * 2.0).sum().backward()
    with pytest.raises(ValueError, match="does not require grad"):
        x.sum().backward()


def test_integer_and_bool_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="int64"):
        Tensor([1, 2, 3], requires_grad=True)
    with pytest.raises(TypeError, match="floating-point"):
        Tensor(np.array([True])).requires_grad_()
    with pytest.raises(TypeError):
        Tensor(np.arange(3, dtype=np.int32), requires_grad=True)
    Tensor([1, 2, 3], dtype="float32", requires_grad=True)  # fine with a float dtype


def test_requires_grad_can_only_be_switched_off_on_leaves():
    x = Tensor(np.ones(2), requires_grad=True)
    y = x * 2.0
    with pytest.raises(ValueError, match="detach"):
        y.requires_grad_(False)
    assert x.requires_grad_(False) is x and not x.requires_grad


def test_comparisons_carry_no_gradient_but_can_mask_a_graph():
    x = Tensor(np.array([-1.0, 0.5, 2.0]), requires_grad=True)
    for result in (x > 0, x >= 0.5, x < 0, x <= 0.5, x == 2.0, x != 2.0,
                   0 < x, np.zeros(3) < x, x > Tensor(np.zeros(3))):
        assert isinstance(result, Tensor) and result.dtype == np.bool_
        assert not result.requires_grad and result.creator is None
    np.testing.assert_array_equal((x > 0).data, [False, True, True])
    np.testing.assert_array_equal((0 < x).data, [False, True, True])
    np.testing.assert_array_equal((np.zeros(3) < x).data, [False, True, True])
    y = x * (x > 0) * x  # x² where x > 0: the mask is a constant
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [0.0, 1.0, 4.0])
    assert y.dtype == np.float64


def test_graph_is_freed_when_unused():
    """No reference cycles: dropping the output frees the whole graph at once."""
    x = Tensor(np.ones(3), requires_grad=True)
    y = (x * 2.0).exp().sum()
    fn = weakref.ref(y.creator)
    gc.disable()
    try:
        del y
        assert fn() is None
    finally:
        gc.enable()


def test_chainrule_grad_returns_gradients_and_checks_use():
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    unused = Tensor(np.array([0.0]), requires_grad=True)
    ga, gb = chainrule.grad((a * b).sum(), [a, b])
    np.testing.assert_allclose(ga.data, b.data)
    np.testing.assert_allclose(gb.data, a.data)
    assert a.grad is None and b.grad is None
    with pytest.raises(ValueError, match="allow_unused"):
        chainrule.grad((a * 2.0).sum(), [a, unused])
    ga, gu = chainrule.grad((a * 2.0).sum(), [a, unused], allow_unused=True)
    assert gu is None
    h = a * b  # the gradient with respect to an intermediate tensor
    (gh,) = chainrule.grad((h * h).sum(), h)
    np.testing.assert_allclose(gh.data, 2 * h.data)


# --------------------------------------------------------------------------- dtypes
def test_float32_stays_float32_through_an_mlp():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((8, 5)).astype(np.float32))
    w1 = Tensor(rng.standard_normal((5, 6)).astype(np.float32), requires_grad=True)
    b1 = Tensor(np.zeros(6, np.float32), requires_grad=True)
    w2 = Tensor(rng.standard_normal((6, 3)).astype(np.float32), requires_grad=True)
    b2 = Tensor(np.zeros(3, np.float32), requires_grad=True)
    target = rng.integers(0, 3, 8)
    h = F.relu(F.linear(x, w1, b1)) * 0.5 + 0.1
    h = F.dropout(F.leaky_relu(h, 0.1), 0.2, rng=np.random.default_rng(1))
    logits = F.maximum(h @ w2 + b2, -3.0)
    loss = F.cross_entropy(logits, target) + 1e-3 * (w1 ** 2).sum() + 0.5 * F.mse_loss(
        F.sigmoid(logits), np.full((8, 3), 0.25)) + F.clip(w2, -1.0, 1.0).abs().mean()
    assert loss.dtype == np.float32
    loss.backward()
    for p in (w1, b1, w2, b2):
        assert p.grad.dtype == np.float32, p.grad.dtype


def _float32_leaf(rng, shape, low=0.5, high=2.0):
    return Tensor(rng.uniform(low, high, shape).astype(np.float32), requires_grad=True)


DTYPE_OPS = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b, "pow": lambda a, b: a ** b, "matmul": lambda a, b: a @ b.T,
    "maximum": F.maximum, "minimum": F.minimum,
    "where": lambda a, b: F.where(a.data > 1.0, a, b),
    "pow-scalar": lambda a, b: a ** 2 + b ** 0.5, "exp": lambda a, b: a.exp() * b.log(),
    "sqrt": lambda a, b: a.sqrt() + b.abs() + b.sin() + b.cos() + b.tanh(),
    "sigmoid": lambda a, b: a.sigmoid() + F.softplus(b) + F.relu(a) + F.leaky_relu(b),
    "clip": lambda a, b: F.clip(a, 0.7, 1.5) + b,
    "reductions": lambda a, b: a.sum(0) + a.mean(1).sum() + a.max(0) + b.min(0) + a.var(0),
    "logsumexp": lambda a, b: F.logsumexp(a, 1) + F.softmax(b, 0).sum(1)
    + F.log_softmax(a, -1).sum(1),
    "shape": lambda a, b: F.concatenate([a.T.reshape(-1), F.stack([b, b]).flatten()])
    + a[np.array([0, 0, 1, 2, 2, 2])].sum() + a[1:, ::-1].sum() + a[a.data > 1].sum(),
    "linear": lambda a, b: F.linear(a, b.T, b[:, 0]),
    "losses": lambda a, b: F.cross_entropy(a, np.array([0, 1, 2])) + F.mse_loss(a, b)
    + F.binary_cross_entropy_with_logits(a, b * 0.3)
    + F.binary_cross_entropy(a * 0.3, b * 0.3),
}


@pytest.mark.parametrize("op", DTYPE_OPS.values(), ids=DTYPE_OPS.keys())
def test_every_op_keeps_float32(op):
    """No operation may promote float32 values or gradients to float64."""
    rng = np.random.default_rng(0)
    a, b = _float32_leaf(rng, (3, 4)), _float32_leaf(rng, (3, 4))
    out = op(a, b)
    assert out.dtype == np.float32
    out.sum().backward()
    for t in (a, b):
        if t.grad is not None:
            assert t.grad.dtype == np.float32


def test_float64_stays_float64():
    w = Tensor(np.array([[0.5, -1.0], [2.0, 0.1]]), requires_grad=True)
    loss = (F.tanh(w @ w) * 0.5 + 1.0).sum() * 2.0
    assert loss.dtype == np.float64
    loss.backward()
    assert w.grad.dtype == np.float64


# --------------------------------------------------------------------------- construction
@pytest.mark.parametrize("data, dtype", [
    (1.5, np.float32), ([1.0, 2.0], np.float32), ([[1.0], [2.0]], np.float32),
    ([1, 2.5], np.float32), (3, np.int64), ([1, 2], np.int64), (True, np.bool_),
    (np.arange(3, dtype=np.float64), np.float64), (np.arange(3, dtype=np.float16), np.float16),
    (np.arange(3, dtype=np.int32), np.int32), (np.float64(2.0), np.float64),
])
def test_construction_dtypes(data, dtype):
    assert Tensor(data).dtype == dtype


def test_dtype_override_and_sharing():
    assert Tensor([1.0, 2.0], dtype="float64").dtype == np.float64
    assert Tensor([1, 2], dtype=np.float32).dtype == np.float32
    assert Tensor(np.ones(2), dtype=np.float32).dtype == np.float32
    t = Tensor(np.ones(2, np.float32))
    assert Tensor(t).dtype == np.float32
    with pytest.raises(TypeError, match="objects"):
        Tensor([object()])


def test_attributes():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, name="x")
    assert x.shape == (2, 3) and x.ndim == 2 and x.size == 6 and x.dtype == np.float64
    assert x.is_leaf and x.grad_fn is None and x.name == "x"
    y = x * 2.0
    assert not y.is_leaf and type(y.grad_fn).__name__ == "Mul"
    s = y.sum()
    assert s.item() == 30.0 and isinstance(s.item(), float)
    assert Tensor(np.array([7])).item() == 7
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        x.item()
    assert isinstance(x.numpy(), np.ndarray) and x.numpy() is x.data
    d = y.detach()
    assert not d.requires_grad and d.creator is None and d.is_leaf
    assert np.shares_memory(d.data, y.data)
    assert x.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert float(s) == 30.0 and int(Tensor(3)) == 3 and bool(Tensor(1.0))


@pytest.mark.parametrize("make", [
    lambda x: x.sum(), lambda x: x.mean(), lambda x: x.max(), lambda x: x.var(),
    lambda x: x[0] * x[1], lambda x: x[0].exp(), lambda x: x @ x, lambda x: F.logsumexp(x),
    lambda x: F.cross_entropy(x, np.array(1)), lambda x: F.mse_loss(x, np.zeros(2)),
], ids=["sum", "mean", "max", "var", "mul", "exp", "dot", "logsumexp", "ce", "mse"])
def test_zero_dimensional_results_hold_ndarrays(make):
    """``.data``, ``.numpy()`` and ``.grad.data`` are documented as ndarrays: 0-d results
    too, not NumPy scalars (which cannot be edited in place or viewed)."""
    x = Tensor(np.array([0.5, 2.0]), requires_grad=True)
    out = make(x)
    assert out.shape == ()
    assert isinstance(out.data, np.ndarray), type(out.data)
    assert isinstance(out.numpy(), np.ndarray)
    s = Tensor(np.array(3.0), requires_grad=True)
    (out * s).backward()
    assert isinstance(s.grad.data, np.ndarray), type(s.grad.data)
    assert isinstance(x.grad.data, np.ndarray)


def test_repr_and_len():
    assert repr(Tensor([1.0, 2.0])) == "Tensor([1., 2.])"
    assert repr(Tensor([1, 2])) == "Tensor([1, 2])"
    r = repr(Tensor(np.array([0.5]), requires_grad=True))
    assert "0.5" in r and "float64" in r and "requires_grad=True" in r
    y = Tensor([1.0], requires_grad=True) * 2.0
    assert "grad_fn=<Mul>" in repr(y)
    assert "name='w'" in repr(Tensor([1.0], name="w"))
    assert repr(Tensor(np.full(3, 1 / 3, np.float32))).count("0.3333") == 3  # 4 digits
    assert len(Tensor(np.zeros((4, 2)))) == 4
    with pytest.raises(TypeError, match="0-d"):
        len(Tensor(1.0))


# --------------------------------------------------------------------------- interop
BINARY_OPERATORS = [operator.add, operator.sub, operator.mul, operator.truediv,
                    operator.pow]


@pytest.mark.parametrize("op", BINARY_OPERATORS, ids=lambda o: o.__name__)
@pytest.mark.parametrize("other_kind", ["ndarray", "float", "int", "np-scalar"])
def test_operators_with_numbers_and_arrays_on_both_sides(op, other_kind):
    values = np.array([[0.5, 1.5, 2.0], [1.0, 3.0, 0.25]])
    other = {"ndarray": np.array([1.5, 2.0, 0.5]), "float": 1.5, "int": 2,
             "np-scalar": np.float64(1.5)}[other_kind]
    for left in (True, False):
        x = Tensor(values.copy(), requires_grad=True)
        result = op(x, other) if left else op(other, x)
        expected = op(values, other) if left else op(other, values)
        assert isinstance(result, Tensor), f"{op.__name__} gave {type(result)}"
        np.testing.assert_allclose(result.data, expected)
        result.sum().backward()
        h = 1e-6  # the gradient reached x: compare with a central difference
        plus = op(values + h, other) if left else op(other, values + h)
        minus = op(values - h, other) if left else op(other, values - h)
        np.testing.assert_allclose(x.grad.data, (plus - minus) / (2 * h), rtol=1e-5)


def test_matmul_with_ndarray_on_both_sides():
    a = np.arange(6.0).reshape(2, 3)
    x = Tensor(np.ones((3, 2)), requires_grad=True)
    left, right = a @ x, x @ a
    assert isinstance(left, Tensor) and isinstance(right, Tensor)
    np.testing.assert_allclose(left.data, a @ np.ones((3, 2)))
    np.testing.assert_allclose(right.data, np.ones((3, 2)) @ a)
    (left.sum() + right.sum()).backward()
    np.testing.assert_allclose(x.grad.data, a.sum(0)[:, None] + a.sum(1)[None, :])


def test_python_constants_do_not_promote_float32():
    x = Tensor(np.ones(2, np.float32), requires_grad=True)
    for y in (x * 2.5, 2.5 * x, x + 1, 1 - x, x / 3.0, 3.0 / x, x ** 2.0, 2.0 ** x,
              x * np.float64(2.0), np.float64(2.0) * x):
        assert y.dtype == np.float32


def test_unary_minus_and_sum_of_tensors():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = sum([x, x * 2.0, -x])  # Python's sum starts with 0 + x
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [2.0, 2.0])


# --------------------------------------------------------------------------- 0-d tensors
# A 0-d tensor accepts axis 0 and -1, as in PyTorch; they name no real axis.
ZERO_D_OPS = {
    "sum": (lambda x: x.sum(0), lambda x: x.sum(0)),
    "mean": (lambda x: x.mean(-1), lambda x: x.mean(-1)),
    "max": (lambda x: x.max(0), lambda x: x.amax(0)),
    "min": (lambda x: x.min(-1), lambda x: x.amin(-1)),
    "softmax": (lambda x: x.softmax(0), lambda x: x.softmax(0)),
    "log_softmax": (lambda x: x.log_softmax(-1), lambda x: x.log_softmax(-1)),
    "logsumexp": (lambda x: chainrule.ops.logsumexp(x, 0), lambda x: x.logsumexp(0)),
    "squeeze": (lambda x: x.squeeze(0), lambda x: x.squeeze(0)),
    "swapaxes": (lambda x: x.swapaxes(0, -1), lambda x: x.swapaxes(0, -1)),
    "flatten": (lambda x: x.flatten(), lambda x: x.flatten()),
}


@pytest.mark.parametrize("name", sorted(ZERO_D_OPS))
def test_zero_dimensional_tensor_with_axis_0_matches_torch(name):
    torch = pytest.importorskip("torch")
    ours, theirs = ZERO_D_OPS[name]
    x = Tensor(np.array(3.0), requires_grad=True)
    xt = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    y, yt = ours(x), theirs(xt)
    assert y.shape == tuple(yt.shape)
    np.testing.assert_allclose(y.data, yt.detach().numpy())
    (y * 5.0).sum().backward()
    (yt * 5.0).sum().backward()
    np.testing.assert_allclose(x.grad.data, xt.grad.numpy())


def test_zero_dimensional_tensor_rejects_other_axes_and_joins():
    x = Tensor(np.array(3.0))
    with pytest.raises(ValueError, match=r"axis 1 is out of range .* shape \(\).*-1\.\.0"):
        x.sum(1)
    with pytest.raises(ValueError, match="0-d tensors have no axis to join.*stack"):
        chainrule.ops.concatenate([x, x])
    with pytest.raises(ValueError, match="0-d tensor has no axis to split"):
        chainrule.ops.split(x, 1)
    assert chainrule.ops.stack([x, x]).shape == (2,)
