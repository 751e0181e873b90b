"""conv2d's algorithms (plain im2col, banded im2col, Winograd F(2×2, 3×3)): each one
held to the plain im2col path and to PyTorch in float64 (forward, both gradients, double
backward), gradchecked, and in float32 within its documented error bound; the
Winograd transform matrices; the rule that picks an algorithm; the scratch buffers."""

from __future__ import annotations

import numpy as np
import pytest
from conv_checks import double_backward

import chainrule
import chainrule.functional as F
import chainrule.ops.conv as conv_ops
from chainrule import Tensor, gradcheck
from chainrule.ops import _scratch, _winograd

FAST = ("banded", "winograd")
# (N, C, H, W), out_channels, kernel, stride, padding, dilation
CASES = {
    "odd-output": ((2, 3, 7, 9), 4, 3, 1, 1, 1),  # 7×9 output: the last tiles stick out
    "no-padding": ((2, 2, 6, 5), 3, 3, 1, 0, 1),
    "padding2": ((1, 3, 5, 6), 2, 3, 1, 2, 1),
    "padding3": ((1, 2, 4, 5), 2, 3, 1, 3, 1),  # dx by col2im: padding ≥ kernel
    "rect-padding": ((2, 2, 6, 7), 3, 3, 1, (0, 2), 1),
    "5x5": ((2, 2, 8, 7), 3, 5, 1, 2, 1),        # im2col only, dx as a flipped convolution
    "stride2": ((2, 3, 7, 8), 2, 3, 2, 1, 1),    # im2col only, dx by col2im
    "dilation2": ((1, 2, 8, 7), 3, 3, 1, 1, 2),
}


def make(rng, case, dtype=np.float64):
    shape, out_channels, kernel, stride, padding, dilation = case
    x = Tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)
    w = Tensor(rng.standard_normal((out_channels, shape[1], kernel, kernel)).astype(dtype),
               requires_grad=True)
    b = Tensor(rng.standard_normal(out_channels).astype(dtype), requires_grad=True)
    return x, w, b, dict(stride=stride, padding=padding, dilation=dilation)


def conv_and_grads(x, w, b, kw, g, algorithm):
    """y and (dx, dW, db) for the output gradient g, computed with ``algorithm``."""
    for t in (x, w, b):
        t.grad = None
    with conv_ops.use_algorithm(algorithm):
        y = F.conv2d(x, w, b, **kw)
        y.backward(g)
    return [y.data, x.grad.data, w.grad.data, b.grad.data]


@pytest.fixture(params=["default bands", "one row per band"])
def bands(request, monkeypatch):
    """Every algorithm with its usual bands, and with bands of one row (many bands)."""
    if request.param == "one row per band":
        monkeypatch.setattr(conv_ops, "BAND_BYTES", 1)
        monkeypatch.setattr(_winograd, "BAND_BYTES", 1)


@pytest.mark.parametrize("algorithm", FAST)
@pytest.mark.parametrize("name", list(CASES))
def test_each_algorithm_matches_plain_im2col_and_torch(torch, rng, bands, algorithm, name):
    x, w, b, kw = make(rng, CASES[name])
    g = rng.standard_normal(F.conv2d(x, w, b, **kw).shape)
    plain = conv_and_grads(x, w, b, kw, g, "im2col")
    fast = conv_and_grads(x, w, b, kw, g, algorithm)
    tx, tw, tb = (torch.tensor(t.data, requires_grad=True) for t in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, **kw)
    ty.backward(torch.tensor(g))
    theirs = [ty.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()]
    for what, ours, reference, torch_value in zip(("y", "dx", "dW", "db"), fast, plain,
                                                   theirs):
        np.testing.assert_allclose(ours, reference, rtol=1e-10, atol=1e-12, err_msg=what)
        np.testing.assert_allclose(ours, torch_value, rtol=1e-10, atol=1e-12, err_msg=what)


@pytest.mark.parametrize("algorithm", FAST)
@pytest.mark.parametrize("name", ["odd-output", "padding2", "rect-padding", "5x5"])
def test_each_algorithm_gradcheck(rng, algorithm, name):
    x, w, b, kw = make(rng, CASES[name])
    with conv_ops.use_algorithm(algorithm):
        report = gradcheck(lambda x, w, b: F.conv2d(x, w, b, **kw), [x, w, b])
    assert report.ok, report.explain()




ONE_PASS = {"odd-output", "no-padding", "padding2", "rect-padding", "5x5"}  # stride 1, p < k


@pytest.mark.parametrize("algorithm", ["im2col", "banded"])
@pytest.mark.parametrize("name", list(CASES))
def test_both_gradients_in_one_pass_equal_each_alone(rng, monkeypatch, bands, algorithm,
                                                      name):
    """When x and W both need their gradients, a stride-1 convolution computes them in
    one pass over the output gradient's columns (``_conv_grads``: dW = G·xᵀ from dx's
    columns G). Each equals the gradient computed alone (the other input detached),
    where the pass applies and only there; the forward then keeps no padded input."""
    passes = []
    one_pass = conv_ops._conv_grads
    monkeypatch.setattr(conv_ops, "_conv_grads",
                        lambda *args: passes.append(one_pass(*args)) or passes[-1])
    x, w, b, kw = make(rng, CASES[name])
    g = rng.standard_normal(F.conv2d(x, w, b, **kw).shape)
    together = conv_and_grads(x, w, b, kw, g, algorithm)
    used = [p is not None for p in passes]
    assert used == ([True] if name in ONE_PASS else [False] * len(used))
    with conv_ops.use_algorithm(algorithm):
        xa = Tensor(x.data, requires_grad=True)
        F.conv2d(xa, Tensor(w.data), **kw).backward(g)
        wa = Tensor(w.data, requires_grad=True)
        F.conv2d(Tensor(x.data), wa, **kw).backward(g)
        y = F.conv2d(x, w, **kw)
    assert (y.creator.padded is None) == (name in ONE_PASS)
    np.testing.assert_allclose(together[1], xa.grad.data, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(together[2], wa.grad.data, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("algorithm", FAST)
def test_each_algorithm_double_backward(torch, rng, algorithm):
    """The gradients' own Functions (Conv2dInputGrad, Conv2dWeightGrad) run on the
    chosen algorithm too: second derivatives by gradcheck and against torch."""
    x, w, b, kw = make(rng, CASES["odd-output"])
    with conv_ops.use_algorithm(algorithm):
        report = gradcheck(double_backward(F.conv2d, kw), [x, w, b], atol=1e-4)
        assert report.ok, report.explain()
        for t in (x, w, b):
            t.grad = None
        double_backward(F.conv2d, kw)(x, w, b).backward()
    tx, tw, tb = (torch.tensor(t.data, requires_grad=True) for t in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, **kw)
    gx, gw = torch.autograd.grad((ty * ty).sum(), [tx, tw], create_graph=True)
    ((gx * gx).sum() + (gw * gw * gw).sum()).backward()
    for ours, theirs in ((x, tx), (w, tw), (b, tb)):
        np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-9)


# float32: each output's error relative to S = Σ |w|·|x| over its window (conv2d of the
# absolute values), the natural scale of a sum's rounding error. Bounds from
# docs/convolution.md ("float32 error"): measured at most 3.2e-7 (im2col) and 4.1e-7
# (Winograd F(2×2, 3×3)) on DeepConvNet's shapes; the bounds leave about 5× room.
FLOAT32_BOUND = {"im2col": 2e-6, "banded": 2e-6, "winograd": 2e-6}


@pytest.mark.parametrize("algorithm", ("im2col",) + FAST)
@pytest.mark.parametrize("channels, size, padding", [(16, 12, 1), (32, 10, 2), (3, 9, 1)])
def test_float32_error_within_the_documented_bound(torch, rng, algorithm, channels, size,
                                                   padding):
    x = rng.standard_normal((4, channels, size, size))
    w = rng.standard_normal((channels, channels, 3, 3))
    g = rng.standard_normal((4, channels, size + 2 * padding - 2, size + 2 * padding - 2))
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    exact = torch.nn.functional.conv2d(tx, tw, padding=padding)  # float64
    exact.backward(torch.tensor(g))
    conv = torch.nn.functional.conv2d
    ax, aw, ag = (torch.tensor(np.abs(a)) for a in (x, w, g))
    scales = [conv(ax, aw, padding=padding).numpy(),                       # Σ|w||x|
              torch.nn.grad.conv2d_input(ax.shape, aw, ag, padding=padding).numpy(),
              torch.nn.grad.conv2d_weight(ax, aw.shape, ag, padding=padding).numpy()]
    x32 = Tensor(x.astype(np.float32), requires_grad=True)
    w32 = Tensor(w.astype(np.float32), requires_grad=True)
    with conv_ops.use_algorithm(algorithm):
        y32 = F.conv2d(x32, w32, padding=padding)
        y32.backward(g.astype(np.float32))
    results = (y32.data, x32.grad.data, w32.grad.data)
    references = (exact.detach().numpy(), tx.grad.numpy(), tw.grad.numpy())
    for what, ours, reference, scale in zip(("y", "dx", "dW"), results, references, scales):
        assert ours.dtype == np.float32
        error = np.max(np.abs(ours - reference) / scale)
        assert error <= FLOAT32_BOUND[algorithm], f"{what}: {error:.2e}"


# --------------------------------------------------------------------------- Winograd
@pytest.mark.parametrize("transform", [_winograd.F2x2, _winograd.F4x4], ids=["F2", "F4"])
def test_winograd_matrices_compute_a_correlation(rng, transform):
    """Aᵀ[(G g) ⊙ (Bᵀ d)] is the 3-tap correlation y_i = Σ_k d_(i+k)·g_k (1-D), and
    nested, Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A the 3×3 one: the matrices of Lavin & Gray."""
    m, t = transform.m, transform.t
    d, g = rng.standard_normal(t), rng.standard_normal(3)
    y = transform.AT @ ((transform.G @ g) * (transform.BT @ d))
    np.testing.assert_allclose(y, [d[i:i + 3] @ g for i in range(m)], rtol=1e-12)
    d2, g2 = rng.standard_normal((t, t)), rng.standard_normal((3, 3))
    u = transform.G @ g2 @ transform.G.T
    v = transform.BT @ d2 @ transform.BT.T
    y2 = transform.AT @ (u * v) @ transform.AT.T
    direct = [[np.sum(d2[i:i + 3, j:j + 3] * g2) for j in range(m)] for i in range(m)]
    np.testing.assert_allclose(y2, direct, rtol=1e-12)


def test_winograd_f4_also_convolves_within_its_larger_bound(rng):
    """F(4×4, 3×3) is kept for the measurements: exact in float64; in float32 its error
    is larger (measured up to 1.5e-5·S, documented bound 5e-5·S)."""
    x, w = rng.standard_normal((3, 4, 11, 10)), rng.standard_normal((5, 4, 3, 3))
    exact = F.conv2d(x, w, padding=1).data
    scale = F.conv2d(np.abs(x), np.abs(w), padding=1).data
    for dtype, bound in ((np.float64, 1e-13), (np.float32, 5e-5)):
        padded = _winograd.pad_input(x.astype(dtype), (1, 1), exact.shape[2:],
                                     _winograd.F4x4)
        y = _winograd.convolve(padded, w.astype(dtype), exact.shape[2:], _winograd.F4x4)
        assert np.max(np.abs(y.transpose(3, 0, 1, 2) - exact) / scale) <= bound


# --------------------------------------------------------------------------- the rule
def test_the_rule_for_the_textbook_networks():
    """DeepConvNet: plain im2col for conv1 (one channel), banded im2col elsewhere;
    SimpleConvNet's 5×5 on one channel: plain. Winograd only from 128 channels at
    14×14, and never for the weight gradient."""
    def choose(c, o, kernel, padding, out, weight_grad=False):
        return conv_ops._choose_algorithm(conv_ops.Window.make(kernel, 1, padding), c, o,
                                          (out, out), 1, weight_grad)
    deep = [choose(1, 16, 3, 1, 28), choose(16, 16, 3, 1, 28), choose(16, 32, 3, 1, 14),
            choose(32, 32, 3, 2, 16), choose(32, 64, 3, 1, 7), choose(64, 64, 3, 1, 7)]
    assert deep == ["im2col", "banded", "banded", "banded", "banded", "banded"]
    assert choose(1, 30, 5, 0, 24) == "im2col"
    assert [choose(128, 128, 3, 1, 14), choose(128, 128, 3, 1, 14, weight_grad=True),
            choose(128, 128, 3, 1, 12), choose(64, 128, 3, 1, 16)] == \
        ["winograd", "banded", "banded", "banded"]
    grouped = conv_ops._choose_algorithm(conv_ops.Window.make(3, 1, 1), 64, 64, (16, 16), 2)
    assert grouped == "im2col"  # the fast paths take one group


def test_a_forced_algorithm_applies_only_where_it_can(rng):
    x, w = rng.standard_normal((1, 4, 6, 6)), rng.standard_normal((4, 4, 3, 3))
    with conv_ops.use_algorithm("winograd"):
        stride2 = conv_ops.Window.make(3, 2, 1)
        assert conv_ops._choose_algorithm(stride2, 4, 4, (3, 3), 1) == "im2col"
        np.testing.assert_allclose(F.conv2d(x, w, stride=2, padding=1).data,
                                   F.conv2d(x, w, padding=1).data[:, :, ::2, ::2])
    with pytest.raises(ValueError, match="unknown convolution algorithm 'fft'"):
        conv_ops.use_algorithm("fft")


# --------------------------------------------------------------------------- scratch
def test_recycled_memory_is_reused_only_when_nothing_uses_it(monkeypatch):
    _scratch.release_scratch()
    monkeypatch.setattr(_scratch, "SMALLEST", 0)  # cache even these small arrays
    a = _scratch.recycled((64, 64), np.float32)
    address = a.__array_interface__["data"][0]
    b = _scratch.recycled((64, 64), np.float32)
    assert not np.shares_memory(a, b)  # a is still in use
    view = a.T[1:]
    del a
    c = _scratch.recycled((64, 64), np.float32)
    assert not np.shares_memory(c, view) and not np.shares_memory(c, b)  # a view lives
    del view
    d = _scratch.recycled((32, 100), np.float32)  # another shape, ≥ half: a's block
    assert d.__array_interface__["data"][0] == address
    assert d.flags.c_contiguous and d.dtype == np.float32 and d.shape == (32, 100)
    held = _scratch.scratch_bytes()
    assert held == 3 * 64 * 64 * 4
    monkeypatch.setattr(_scratch, "LIMIT_BYTES", held)
    del b, c
    e = _scratch.recycled((100, 100), np.float32)  # too big for any block: free ones go
    assert e.shape == (100, 100) and _scratch.scratch_bytes() <= held
    t = _scratch.recycled_like(np.empty((3, 4, 5), np.float32).transpose(2, 0, 1))
    assert t.shape == (5, 3, 4) and t.strides == (4, 80, 20)  # the same memory order
    monkeypatch.setattr(_scratch, "SMALLEST", 2**18)
    assert _scratch.recycled((10,), np.float32).base is None  # small: plain new arrays
    _scratch.release_scratch()
    assert _scratch.scratch_bytes() == 0


def test_a_training_step_leaves_bounded_scratch_and_the_same_results(rng):
    """Two identical steps give identical gradients (no state leaks between calls
    through the reused buffers), and the buffers stay under the limit."""
    model = chainrule.nn.DeepConvNet(seed=0)
    model.eval()  # no dropout: the two steps must agree exactly
    x = rng.random((3, 1, 28, 28), dtype=np.float32)
    grads = []
    for _ in range(2):
        model.zero_grad()
        model(x).sum().backward()
        grads.append([p.grad.data.copy() for p in model.parameters()])
    for first, second in zip(*grads):
        np.testing.assert_array_equal(first, second)
    assert 0 < _scratch.scratch_bytes() <= _scratch.LIMIT_BYTES
