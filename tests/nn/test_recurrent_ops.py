"""The fused recurrent operations (F.rnn, F.lstm, F.gru): gradients against central
differences through time, equality with the composed twin (values and gradients),
differentiating twice, and the unrolled graph that explain and viz show."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
import chainrule.functional as F
from chainrule import Tensor, gradcheck
from chainrule.explain import explain
from chainrule.tensor import Function
from chainrule.viz import to_dot

T, N, D, H = 4, 2, 3, 5
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}


def tensors(kind, bias=True, initial=True, seed=0, dtype=np.float64, T=T):
    """x, the initial states and the weights of one layer, all requiring grad."""
    rng = np.random.default_rng(seed)
    G = GATES[kind]

    def make(*shape, scale=1.0):
        return Tensor((rng.standard_normal(shape) * scale).astype(dtype), requires_grad=True)

    x = make(T, N, D)
    states = [make(N, H) if initial else None for _ in range(2 if kind == "lstm" else 1)]
    weights = [make(D, G * H, scale=0.5), make(H, G * H, scale=0.5)]
    weights += [make(G * H, scale=0.3), make(G * H, scale=0.3)] if bias else [None, None]
    if kind == "rnn_relu":  # keep pre-activations away from relu's kink at 0
        weights[0].data *= 0.3
    return x, states, weights


def layer(kind, x, states, weights, fused=True):
    """The layer's outputs: (h_1..h_T, h_T[, c_T])."""
    if kind == "lstm":
        return F.lstm(x, *states, *weights, fused=fused)
    if kind == "gru":
        return F.gru(x, *states, *weights, fused=fused)
    return F.rnn(x, *states, *weights, nonlinearity=kind[4:], fused=fused)


def leaves(x, states, weights):
    return [t for t in [x, *states, *weights] if t is not None]


def loss_of(outputs, seed=7):
    """Σ output·w over every output (the final states included), fixed random w."""
    rng = np.random.default_rng(seed)
    total = 0.0
    for out in outputs:
        total = total + (out * Tensor(rng.standard_normal(out.shape).astype(out.dtype))).sum()
    return total


@pytest.mark.parametrize("kind", list(GATES))
@pytest.mark.parametrize("bias", [True, False])
def test_fused_gradients_match_central_differences(kind, bias):
    x, states, weights = tensors(kind, bias)

    def f(*_):
        return loss_of(layer(kind, x, states, weights))

    report = gradcheck(f, leaves(x, states, weights), atol=1e-7, rtol=1e-5)
    assert report.ok, report.explain()


@pytest.mark.parametrize("kind", list(GATES))
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("initial", [True, False])
@pytest.mark.parametrize("steps", [1, 6])
def test_fused_equals_composed_twin(kind, bias, initial, steps):
    x, states, weights = tensors(kind, bias, initial, T=steps)
    results = []
    for fused in (True, False):
        for t in leaves(x, states, weights):
            t.grad = None
        outputs = layer(kind, x, states, weights, fused=fused)
        loss_of(outputs).backward()
        results.append([o.data for o in outputs]
                       + [t.grad.data for t in leaves(x, states, weights)])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("kind", list(GATES))
def test_float32_fused_equals_composed_twin(kind):
    x, states, weights = tensors(kind, dtype=np.float32)
    results = []
    for fused in (True, False):
        for t in leaves(x, states, weights):
            t.grad = None
        outputs = layer(kind, x, states, weights, fused=fused)
        loss_of(outputs).backward()
        assert all(o.dtype == np.float32 for o in outputs)
        results.append([o.data for o in outputs]
                       + [t.grad.data for t in leaves(x, states, weights)])
    for a, b in zip(*results):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_only_what_is_needed_gets_a_gradient():
    x, (h0, c0), weights = tensors("lstm")
    x.requires_grad = False
    c0.requires_grad = False
    out, h, c = F.lstm(x, h0, c0, *weights)
    (out.sum() + c.sum()).backward()
    assert x.grad is None and c0.grad is None
    assert h0.grad is not None and all(w.grad is not None for w in weights)


# --------------------------------------------------------------------------- twice
@pytest.mark.parametrize("kind", list(GATES))
def test_create_graph_differentiates_through_the_composed_twin(kind):
    """Gradients of a gradient norm: the fused layer (which takes the gradient through
    its composed twin when create_graph=True) equals the composed layer."""
    results = []
    for fused in (True, False):
        x, states, weights = tensors(kind)
        params = leaves(x, states, weights)
        loss = loss_of(layer(kind, x, states, weights, fused=fused))
        grads = chainrule.grad(loss, params, create_graph=True)
        assert all(g.requires_grad for g in grads)
        penalty = sum((g * g).sum() for g in grads)
        penalty.backward()
        results.append([p.grad.data for p in params])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_second_derivatives_match_torch():
    torch = pytest.importorskip("torch")
    x, (h0, c0), weights = tensors("lstm")
    theirs = torch.nn.LSTM(D, H).double()
    with torch.no_grad():  # torch stores the gates' weights transposed, (4H, in)
        for name, w in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"),
                           weights):
            getattr(theirs, name).copy_(torch.tensor(w.data.T))
    tx, th0, tc0 = [torch.tensor(t.data, requires_grad=True) for t in (x, h0, c0)]
    out, _, _ = F.lstm(x, h0, c0, *weights)
    (gx,) = chainrule.grad((out * out).sum(), [x], create_graph=True)
    (gx * gx).sum().backward()
    tout, _ = theirs(tx, (th0[None], tc0[None]))
    (tgx,) = torch.autograd.grad((tout * tout).sum(), [tx], create_graph=True)
    (tgx * tgx).sum().backward()
    np.testing.assert_allclose(gx.data, tgx.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(weights[1].grad.data, theirs.weight_hh_l0.grad.numpy().T,
                               rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(weights[2].grad.data, theirs.bias_ih_l0.grad.numpy(),
                               rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(h0.grad.data, th0.grad.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(c0.grad.data, tc0.grad.numpy(), rtol=1e-9, atol=1e-11)


class Probe(Function):
    """y = x, counting its backward calls."""

    calls = 0

    def forward(self, x):
        return x.copy()

    def backward(self, g):
        Probe.calls += 1
        return g


def test_create_graph_does_not_rerun_the_graph_before_the_layer():
    """The twin is differentiated only back to the layer's own inputs: an operation
    before a stack of fused layers runs its backward once, as without create_graph."""
    x, (h0,), (w_ih, w_hh, b_ih, b_hh) = tensors("gru")
    w_upper = Tensor(np.random.default_rng(1).standard_normal((H, 3 * H)) * 0.5,
                     requires_grad=True)
    Probe.calls = 0
    hidden = Probe()(x)
    hidden, _ = F.gru(hidden, h0, w_ih, w_hh, b_ih, b_hh)
    for _ in range(2):
        hidden, _ = F.gru(hidden, h0, w_upper, w_hh, b_ih, b_hh)
    grads = chainrule.grad((hidden * hidden).sum(), [x, w_upper], create_graph=True)
    assert Probe.calls == 1
    sum((g * g).sum() for g in grads).backward()
    assert Probe.calls == 2  # and once more for the second derivative
    assert x.grad is not None and w_upper.grad is not None


# --------------------------------------------------------------------------- pictures
@pytest.mark.parametrize("kind", ["lstm", "rnn_tanh"])
def test_explain_lists_the_time_steps_of_a_composed_layer(kind):
    x, states, weights = tensors(kind, T=3)
    outputs = layer(kind, x, states, weights, fused=False)
    trace = explain(outputs[0].sum())
    labels = [node.label for node in trace.nodes]
    symbols = "hc" if kind == "lstm" else "h"
    for t in (1, 2, 3):
        for symbol in symbols:
            assert f"{symbol}_{t}" in labels
            assert trace.step(f"{symbol}_{t}").upstream.shape == (N, H)
    assert "h_4" not in labels
    assert "h_3" in str(trace)
    assert all(f"{symbol}_{t}" in to_dot(trace) for t in (1, 2, 3) for symbol in symbols)


def test_explain_shows_the_fused_layer_as_one_step_with_its_rule():
    x, states, weights = tensors("lstm", T=3)
    out, _, _ = F.lstm(x, *states, *weights)
    trace = explain(out.sum())
    fused = [s for s in trace.steps if s.node.op == "lstm"]
    assert len(fused) == 1
    assert "ds = dc + dh·o·(1 - tanh²c)" in fused[0].node.rule
