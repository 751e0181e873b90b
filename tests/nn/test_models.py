"""MLP and TwoLayerNet: structure, names, defaults, errors, seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from chainrule import nn


def linears(model):
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def test_mlp_one_name_per_layer():
    model = nn.MLP([2, 10, 1], activations=["sigmoid", "sigmoid"], seed=0)
    kinds = [type(m) for m in model.layers]
    assert kinds == [nn.Linear, nn.Sigmoid, nn.Linear, nn.Sigmoid]
    out = model(np.zeros((4, 2)))
    assert out.shape == (4, 1) and np.all((out.data > 0) & (out.data < 1))


def test_mlp_single_name_means_hidden_layers_and_linear_output():
    model = nn.MLP([784, 100, 10], activations="relu", seed=0)
    assert [type(m) for m in model.layers] == [nn.Linear, nn.ReLU, nn.Linear, nn.Identity]
    assert [n for n, _ in model.named_parameters()] == [
        "layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"]
    assert all(p.dtype == np.float32 for p in model.parameters())


def test_mlp_default_init_matches_activation():
    relu = nn.MLP([600, 500, 400], activations="relu", seed=0)
    first, last = linears(relu)
    assert first.weight.data.std() == pytest.approx(math.sqrt(2 / 600), rel=0.03)  # He
    assert last.weight.data.std() == pytest.approx(math.sqrt(2 / 900), rel=0.03)  # Xavier
    tanh = nn.MLP([600, 500], activations=["tanh"], seed=0)
    assert linears(tanh)[0].weight.data.std() == pytest.approx(math.sqrt(2 / 1100), rel=0.03)
    std = nn.MLP([600, 500], activations=["relu"], init="std", seed=0)
    assert linears(std)[0].weight.data.std() == pytest.approx(0.01, rel=0.03)


def test_mlp_batch_norm_and_dropout():
    model = nn.MLP([4, 8, 8, 3], activations="leaky_relu", batch_norm=True, dropout=0.2,
                   seed=1)
    kinds = [type(m) for m in model.layers]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.LeakyReLU, nn.Dropout] * 2 + [
        nn.Linear, nn.Identity]
    assert model(np.ones((5, 4))).shape == (5, 3)


def test_mlp_errors():
    with pytest.raises(ValueError, match="unknown activation 'relux'.*relu, leaky_relu"):
        nn.MLP([2, 3, 1], activations="relux")
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        nn.MLP([2, 3, 1], activations=["relu", "swish"])
    with pytest.raises(ValueError, match="2 layers.*needs 2 names.*got 3"):
        nn.MLP([2, 3, 1], activations=["relu", "relu", "relu"])
    with pytest.raises(ValueError, match="at least two sizes"):
        nn.MLP([4], activations="relu")
    with pytest.raises(ValueError, match="valid names"):
        nn.get_activation("mish")
    assert isinstance(nn.get_activation("GELU", approximate="tanh"), nn.GELU)


def test_seed_makes_constructions_identical():
    for make in (lambda s: nn.MLP([5, 7, 3], "relu", dropout=0.5, seed=s),
                 lambda s: nn.TwoLayerNet(5, 7, 3, seed=s)):
        a, b, c = make(4), make(4), make(5)
        for key, value in a.state_dict().items():
            np.testing.assert_array_equal(value, b.state_dict()[key])
        assert any(not np.array_equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())
    x = np.ones((3, 5))
    a, b = nn.MLP([5, 7, 3], "relu", dropout=0.5, seed=2), nn.MLP([5, 7, 3], "relu",
                                                                   dropout=0.5, seed=2)
    np.testing.assert_array_equal(a(x).data, b(x).data)  # same dropout masks too


def test_two_layer_net():
    net = nn.TwoLayerNet(seed=0)
    assert [n for n, _ in net.named_parameters()] == [
        "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert net.fc1.weight.shape == (784, 50) and net.fc2.weight.shape == (50, 10)
    assert isinstance(net.fc1, nn.Affine)
    x = np.random.default_rng(0).uniform(size=(8, 784)).astype(np.float32)
    t = np.arange(8) % 10
    assert net(x).shape == (8, 10) and net.predict(x).dtype == np.float32
    loss = net.loss(x, t)
    loss.backward()
    assert net.fc1.weight.grad.shape == (784, 50)
    assert 0.0 <= net.accuracy(x, t) <= 1.0
    assert net.accuracy(x, np.eye(10)[t]) == net.accuracy(x, t)
    textbook = nn.TwoLayerNet(784, 100, 10, weight_init_std=0.01, seed=0)
    assert textbook.fc1.weight.data.std() == pytest.approx(0.01, rel=0.03)
    np.testing.assert_array_equal(textbook.fc1.bias.data, 0)


def test_mlp_trains_on_xor():
    """A smoke test that the pieces fit together: plain gradient descent learns XOR."""
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    t = np.array([[0], [1], [1], [0]], dtype=np.float32)
    model = nn.MLP([2, 8, 1], activations=["tanh", "sigmoid"], seed=0)
    criterion = nn.MSELoss()
    for _ in range(1500):
        model.zero_grad()
        criterion(model(x), t).backward()
        for p in model.parameters():
            p.data -= 0.5 * p.grad.data
    assert np.all(np.round(model(x).data) == t)
