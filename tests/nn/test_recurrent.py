"""nn.RNN, nn.LSTM, nn.GRU and their cells against torch.nn (weights loaded from the
torch module with load_torch_state_dict): outputs, final states and every gradient,
float64 with tight tolerances; dropout between layers; errors for bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule.functional as F
from chainrule import Tensor, nn
from chainrule.explain import explain

torch = pytest.importorskip("torch")

N, T, D, H = 3, 5, 4, 6  # odd sizes: no axis can be mistaken for another

# (chainrule class, torch class, extra arguments)
KINDS = {
    "rnn_tanh": (nn.RNN, torch.nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (nn.RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTM, torch.nn.LSTM, {}),
    "gru": (nn.GRU, torch.nn.GRU, {}),
}
CELLS = {
    "rnn_tanh": (nn.RNNCell, torch.nn.RNNCell, {"nonlinearity": "tanh"}),
    "rnn_relu": (nn.RNNCell, torch.nn.RNNCell, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTMCell, torch.nn.LSTMCell, {}),
    "gru": (nn.GRUCell, torch.nn.GRUCell, {}),
}


def pair(table, kind, *args, fused=True, **kwargs):
    """The torch module (float64, seeded) and ours with its weights loaded."""
    ours_cls, torch_cls, extra = table[kind]
    torch.manual_seed(0)
    theirs = torch_cls(*args, **extra, **kwargs).double()
    ours_kwargs = {"fused": fused} if table is KINDS else {}
    ours = ours_cls(*args, **extra, **kwargs, **ours_kwargs, dtype=np.float64)
    result = ours.load_torch_state_dict(theirs.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    return ours, theirs


def data(*shape, seed):
    array = np.random.default_rng(seed).standard_normal(shape)
    return Tensor(array.copy(), requires_grad=True), torch.tensor(array, requires_grad=True)


def close(ours, theirs, atol=1e-12):
    ours = ours.data if isinstance(ours, Tensor) else ours
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-10, atol=atol)


def flat(states):
    """h_n, or the LSTM's (h_n, c_n), as a list."""
    return list(states) if isinstance(states, tuple) else [states]


def backward_both(ours_outputs, theirs_outputs, seed=100):
    """Backpropagate Σ output·w with the same random w for every output on both sides."""
    rng = np.random.default_rng(seed)
    ours_loss, theirs_loss = 0.0, 0.0
    for o, t in zip(ours_outputs, theirs_outputs):
        w = rng.standard_normal(o.shape)
        ours_loss = ours_loss + (o * Tensor(w)).sum()
        theirs_loss = theirs_loss + (t * torch.tensor(w)).sum()
    ours_loss.backward()
    theirs_loss.backward()


def check_parameter_grads(ours, theirs):
    for name, param in theirs.named_parameters():
        ours_grad = getattr(ours, name).grad
        expected = param.grad.T if name.startswith("weight") else param.grad
        close(ours_grad, expected, atol=1e-11)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("initial", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_sequence_layers_match_torch(kind, num_layers, batch_first, initial, bias):
    ours, theirs = pair(KINDS, kind, D, H, num_layers=num_layers, bias=bias,
                        batch_first=batch_first)
    x, tx = data(*((N, T, D) if batch_first else (T, N, D)), seed=1)
    states, torch_states = [], []
    if initial:
        for seed in range(2 if kind == "lstm" else 1):
            s, ts = data(num_layers, N, H, seed=2 + seed)
            states.append(s)
            torch_states.append(ts)
    hx = None if not initial else tuple(states) if kind == "lstm" else states[0]
    torch_hx = None if not initial else tuple(torch_states) if kind == "lstm" \
        else torch_states[0]
    out, last = ours(x, hx)
    tout, tlast = theirs(tx, torch_hx)
    close(out, tout)
    for o, t in zip(flat(last), flat(tlast)):
        close(o, t)
    backward_both([out, *flat(last)], [tout, *flat(tlast)])
    close(x.grad, tx.grad, atol=1e-11)
    for s, ts in zip(states, torch_states):
        close(s.grad, ts.grad, atol=1e-11)
    check_parameter_grads(ours, theirs)


@pytest.mark.parametrize("kind", list(KINDS))
def test_composed_layers_match_torch(kind):
    ours, theirs = pair(KINDS, kind, D, H, num_layers=2, batch_first=True, fused=False)
    x, tx = data(N, T, D, seed=1)
    out, last = ours(x)
    tout, tlast = theirs(tx)
    close(out, tout)
    backward_both([out, *flat(last)], [tout, *flat(tlast)])
    close(x.grad, tx.grad, atol=1e-11)
    check_parameter_grads(ours, theirs)


@pytest.mark.parametrize("kind", list(KINDS))
def test_unbatched_input(kind):
    ours, theirs = pair(KINDS, kind, D, H, num_layers=2)
    x, tx = data(T, D, seed=4)
    states, torch_states = zip(*[data(2, H, seed=5 + i)
                                 for i in range(2 if kind == "lstm" else 1)])
    hx, torch_hx = (states, torch_states) if kind == "lstm" else (states[0], torch_states[0])
    out, last = ours(x, hx)
    tout, tlast = theirs(tx, torch_hx)
    assert out.shape == (T, H)
    close(out, tout)
    for o, t in zip(flat(last), flat(tlast)):
        assert o.shape == (2, H)
        close(o, t)
    backward_both([out, *flat(last)], [tout, *flat(tlast)])
    close(x.grad, tx.grad, atol=1e-11)
    for s, ts in zip(states, torch_states):
        close(s.grad, ts.grad, atol=1e-11)
    check_parameter_grads(ours, theirs)


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("initial", [True, False])
def test_cells_match_torch(kind, bias, batched, initial):
    ours, theirs = pair(CELLS, kind, D, H, bias=bias)
    lead = (N,) if batched else ()
    x, tx = data(*lead, D, seed=1)
    states, torch_states = [], []
    if initial:
        for seed in range(2 if kind == "lstm" else 1):
            s, ts = data(*lead, H, seed=2 + seed)
            states.append(s)
            torch_states.append(ts)
    hx = None if not initial else tuple(states) if kind == "lstm" else states[0]
    torch_hx = None if not initial else tuple(torch_states) if kind == "lstm" \
        else torch_states[0]
    new = flat(ours(x, hx))
    tnew = flat(theirs(tx, torch_hx))
    for o, t in zip(new, tnew):
        assert o.shape == lead + (H,)
        close(o, t)
    backward_both(new, tnew)
    close(x.grad, tx.grad)
    for s, ts in zip(states, torch_states):
        close(s.grad, ts.grad)
    check_parameter_grads(ours, theirs)


def test_a_cell_stepped_by_hand_equals_the_layer():
    """An LSTMCell run over the sequence gives the LSTM's output (same weights)."""
    layer = nn.LSTM(D, H, seed=3, dtype=np.float64)
    cell = nn.LSTMCell(D, H, dtype=np.float64)
    cell.load_state_dict({name[:-3]: value for name, value in layer.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((T, N, D))
    out, (h_n, c_n) = layer(x)
    state = None
    for t in range(T):
        state = cell(x[t], state)
        np.testing.assert_allclose(state[0].data, out.data[t], atol=1e-14)
    np.testing.assert_allclose(state[1].data, c_n.data[0], atol=1e-14)


# --------------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("kind", list(KINDS))
def test_float32_by_default_and_close_to_torch(kind):
    ours_cls, torch_cls, extra = KINDS[kind]
    torch.manual_seed(0)
    theirs = torch_cls(D, H, num_layers=2, **extra)
    ours = ours_cls(D, H, num_layers=2, **extra)
    assert all(p.dtype == np.float32 for p in ours.parameters())
    ours.load_torch_state_dict(theirs.state_dict())
    array = np.random.default_rng(0).standard_normal((T, N, D)).astype(np.float32)
    x = Tensor(array, requires_grad=True)
    out, _ = ours(x)
    tout, _ = theirs(torch.tensor(array))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, tout.detach().numpy(), atol=1e-5)
    out.sum().backward()
    assert x.grad.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in ours.parameters())
    # a float64 NumPy batch is computed in the layer's float32, as in nn.Linear
    assert ours(array.astype(np.float64))[0].dtype == np.float32


def test_initialisation_is_torchs_uniform_and_seedable():
    lstm = nn.LSTM(7, 25, num_layers=2, seed=1)
    bound = 1 / np.sqrt(25)
    values = np.concatenate([p.data.ravel() for p in lstm.parameters()])
    assert np.abs(values).max() <= bound
    assert np.abs(values).max() > 0.95 * bound  # spread over the whole interval
    assert abs(values.mean()) < 0.02
    again = nn.LSTM(7, 25, num_layers=2, seed=1)
    other = nn.LSTM(7, 25, num_layers=2, seed=2)
    for a, b, c in zip(lstm.parameters(), again.parameters(), other.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
        assert not np.array_equal(a.data, c.data)
    names = [name for name, _ in lstm.named_parameters()]
    assert names == [f"{kind}_{part}_l{k}" for k in range(2)
                     for kind, part in (("weight", "ih"), ("weight", "hh"),
                                        ("bias", "ih"), ("bias", "hh"))]
    assert lstm.weight_ih_l0.shape == (7, 100) and lstm.weight_hh_l1.shape == (25, 100)
    assert lstm.weight_ih_l1.shape == (25, 100) and lstm.bias_hh_l1.shape == (100,)
    assert [n for n, _ in nn.GRU(3, 4, bias=False).named_parameters()] == \
        ["weight_ih_l0", "weight_hh_l0"]


# --------------------------------------------------------------------------- dropout
@pytest.mark.parametrize("kind", list(KINDS))
def test_dropout_in_eval_mode_matches_torch(kind):
    ours, theirs = pair(KINDS, kind, D, H, num_layers=3, dropout=0.4)
    ours.eval()
    theirs.eval()
    x, tx = data(T, N, D, seed=1)
    out, _ = ours(x)
    tout, _ = theirs(tx)
    close(out, tout)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("fused", [True, False])
def test_dropout_masks_act_between_layers_only(kind, fused):
    """In training, the output equals layer 1 applied to a dropped-out layer 0, with the
    masks drawn from the module's generator; the last layer's output is not dropped."""
    ours_cls, _, extra = KINDS[kind]
    net = ours_cls(D, H, num_layers=2, dropout=0.5, fused=fused, seed=4,
                   dtype=np.float64, **extra)
    x = np.random.default_rng(0).standard_normal((T, N, D))
    state = net.rng.bit_generator.state
    out, last = net(x)
    net.rng.bit_generator.state = state  # replay the same masks by hand
    options = net._options()

    def layer(k, inputs):
        weights = [getattr(net, f"{p}_l{k}") for p in ("weight_ih", "weight_hh",
                                                       "bias_ih", "bias_hh")]
        return net._function(inputs, *([None] * net._states), *weights, **options)

    first = layer(0, Tensor(x))
    dropped = F.dropout(first[0], 0.5, True, net.rng)
    assert 0.3 < np.mean(dropped.data == 0) < 0.7
    second = layer(1, dropped)
    np.testing.assert_allclose(out.data, second[0].data, atol=1e-14)
    np.testing.assert_allclose(flat(last)[0].data[0], first[1].data, atol=1e-14)
    net.eval()
    assert not np.allclose(net(x)[0].data, out.data)  # eval: no masks


def test_dropout_with_one_layer_warns_and_changes_nothing():
    with pytest.warns(UserWarning, match="num_layers=1"):
        net = nn.GRU(D, H, dropout=0.5, seed=0)
    x = np.random.default_rng(0).standard_normal((T, N, D)).astype(np.float32)
    train_out = net(x)[0].data
    np.testing.assert_array_equal(net.eval()(x)[0].data, train_out)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.GRU(D, H, num_layers=2, dropout=0.5)


def test_fused_and_composed_modules_agree_in_training_with_dropout():
    nets = [nn.LSTM(D, H, num_layers=3, dropout=0.3, batch_first=True, fused=fused,
                    seed=9, dtype=np.float64) for fused in (True, False)]
    x = np.random.default_rng(0).standard_normal((N, T, D))
    results = []
    for net in nets:
        out, (h, c) = net(x)
        (out.sum() + (h * c).sum()).backward()
        results.append([out.data, h.data, c.data] + [p.grad.data for p in net.parameters()])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, atol=1e-13)


def test_a_multi_layer_composed_module_labels_states_by_layer():
    net = nn.LSTM(D, H, num_layers=2, fused=False, seed=0)
    out, _ = net(np.zeros((3, N, D), dtype=np.float32))
    labels = [node.label for node in explain(out.sum()).nodes]
    assert {"h_1/l0", "c_3/l0", "h_1/l1", "h_3/l1"} <= set(labels)


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("make, message", [
    (lambda: nn.LSTM(0, 4), "input_size must be a positive int"),
    (lambda: nn.LSTM(3, 2.5), "hidden_size must be a positive int"),
    (lambda: nn.GRU(3, 4, num_layers=0), "num_layers must be a positive int"),
    (lambda: nn.RNN(3, 4, nonlinearity="sigmoid"), "nonlinearity must be one of"),
    (lambda: nn.RNNCell(3, 4, nonlinearity="sigmoid"), "nonlinearity must be one of"),
    (lambda: nn.LSTM(3, 4, num_layers=2, dropout=1.0), r"dropout probability .* \[0, 1\)"),
    (lambda: nn.LSTM(3, 4, num_layers=2, dropout=-0.1), r"dropout probability"),
    (lambda: nn.LSTM(3, 4, dtype=np.int32), "floating-point"),
    (lambda: nn.GRUCell(3, 0), "hidden_size must be a positive int"),
])
def test_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_inputs_and_states():
    lstm, gru = nn.LSTM(D, H, num_layers=2), nn.GRU(D, H, batch_first=True)
    x = np.zeros((T, N, D), dtype=np.float32)
    with pytest.raises(ValueError, match=r"expected input of shape \(T, N, D\) .*D = "
                                         r"input_size = 4, got \(5, 3, 5\)"):
        lstm(np.zeros((T, N, D + 1)))
    with pytest.raises(ValueError, match=r"\(N, T, D\)"):
        gru(np.zeros((N, T, D, 1)))
    with pytest.raises(ValueError, match="got \\(4,\\)"):
        lstm(np.zeros(D))
    with pytest.raises(ValueError, match="got \\(0, 3, 4\\)"):
        lstm(np.zeros((0, N, D)))
    h0 = np.zeros((2, N, H), dtype=np.float32)
    with pytest.raises(TypeError, match=r"pair \(h_0, c_0\)"):
        lstm(x, h0)
    with pytest.raises(ValueError, match=r"c_0 must have shape \(num_layers, N, H\) = "
                                         r"\(2, 3, 6\), got \(1, 3, 6\)"):
        lstm(x, (h0, h0[:1]))
    with pytest.raises(TypeError, match="one tensor h_0"):
        gru(np.zeros((N, T, D)), (h0[:1], h0[:1]))
    with pytest.raises(ValueError, match=r"h_0 must have shape \(num_layers, N, H\)"):
        gru(np.zeros((N, T, D)), h0)
    with pytest.raises(ValueError, match=r"\(num_layers, H\) for unbatched input"):
        gru(np.zeros((T, D)), h0[:1])
    with pytest.raises(TypeError, match="dtype float64 but the layer's parameters are "
                                        "float32"):
        lstm(Tensor(np.zeros((T, N, D))))


def test_bad_cell_inputs():
    cell, lstm_cell = nn.GRUCell(D, H), nn.LSTMCell(D, H)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 4\) or \(4,\), "
                                         r"got \(3, 5\)"):
        cell(np.zeros((N, D + 1)))
    with pytest.raises(ValueError, match=r"h must have shape \(3, 6\) to fit the input, "
                                         r"got \(3, 5\)"):
        cell(np.zeros((N, D)), np.zeros((N, H - 1)))
    with pytest.raises(TypeError, match=r"pair \(h, c\)"):
        lstm_cell(np.zeros((N, D)), np.zeros((N, H)))
    with pytest.raises(TypeError, match="one tensor h"):
        cell(np.zeros((N, D)), (np.zeros((N, H)),) * 2)


def test_functional_layer_checks_its_arguments():
    w_ih, w_hh = Tensor(np.zeros((D, 4 * H))), Tensor(np.zeros((H, 4 * H)))
    x = np.zeros((T, N, D))
    with pytest.raises(ValueError, match=r"weight_hh must have shape \(H, 3·H\)"):
        F.gru(x, None, Tensor(np.zeros((D, 3 * H))), w_hh)
    with pytest.raises(ValueError, match=r"weight_ih must have shape \(input_size, 24\)"):
        F.lstm(x, None, None, Tensor(np.zeros((D, 3 * H))), w_hh)
    with pytest.raises(ValueError, match=r"input must have shape \(T, N, 4\)"):
        F.lstm(np.zeros((N, D)), None, None, w_ih, w_hh)
    with pytest.raises(ValueError, match=r"bias_ih must have shape \(24,\)"):
        F.lstm(x, None, None, w_ih, w_hh, Tensor(np.zeros(H)), Tensor(np.zeros(H)))
    with pytest.raises(ValueError, match="give both bias_ih and bias_hh"):
        F.lstm(x, None, None, w_ih, w_hh, Tensor(np.zeros(4 * H)), None)
    with pytest.raises(ValueError, match=r"c0 must have shape \(N, H\) = \(3, 6\)"):
        F.lstm(x, None, np.zeros((1, H)), w_ih, w_hh)
    with pytest.raises(ValueError, match="nonlinearity must be one of"):
        F.rnn(x, None, Tensor(np.zeros((D, H))), Tensor(np.zeros((H, H))),
              nonlinearity="gelu")


def test_repr_shows_the_arguments():
    text = repr(nn.LSTM(10, 20, num_layers=2, batch_first=True, dropout=0.1, fused=False))
    assert text.startswith("LSTM(10, 20, num_layers=2, batch_first=True, dropout=0.1, "
                           "fused=False)")
    assert "weight_ih_l0 (10, 80)" in text
    assert repr(nn.RNN(3, 4, nonlinearity="relu", bias=False)).startswith(
        "RNN(3, 4, nonlinearity='relu', bias=False)")
    assert repr(nn.GRUCell(3, 4)).startswith("GRUCell(3, 4)")
