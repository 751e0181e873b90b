"""Layers and losses match their ``torch.nn`` equivalents with the same weights copied
in (Linear's weight transposed: chainrule stores (in, out), PyTorch (out, in))."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import Tensor, nn

torch = pytest.importorskip("torch")


def pair(*shape, seed=0):
    """The same float64 data as a chainrule Tensor and a torch tensor, both requiring
    grad."""
    data = np.random.default_rng(seed).standard_normal(shape)
    return Tensor(data.copy(), requires_grad=True), torch.tensor(data, requires_grad=True)


def close(ours, theirs, atol=1e-10):
    ours = ours.data if isinstance(ours, Tensor) else ours
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-9, atol=atol)


@pytest.mark.parametrize("lead", [(5,), (2, 3), ()])
def test_linear(lead):
    ours = nn.Linear(4, 3, seed=0).double()
    theirs = torch.nn.Linear(4, 3).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.data.T))
        theirs.bias.copy_(torch.tensor(np.array([0.1, -0.2, 0.3])))
    ours.bias.data[:] = [0.1, -0.2, 0.3]
    x, tx = pair(*lead, 4)
    y, ty = ours(x), theirs(tx)
    close(y, ty)
    g = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    close(x.grad, tx.grad)
    close(ours.weight.grad, theirs.weight.grad.T)
    close(ours.bias.grad, theirs.bias.grad)


def _batchnorm_pair(cls, torch_cls, channels):
    ours, theirs = cls(channels, momentum=0.2).double(), torch_cls(channels, momentum=0.2)
    theirs = theirs.double()
    rng = np.random.default_rng(5)
    gamma, beta = rng.standard_normal(channels), rng.standard_normal(channels)
    ours.weight.data[:], ours.bias.data[:] = gamma, beta
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(gamma))
        theirs.bias.copy_(torch.tensor(beta))
    return ours, theirs


@pytest.mark.parametrize("cls,torch_name,shape", [
    (nn.BatchNorm1d, "BatchNorm1d", (6, 3)),
    (nn.BatchNorm1d, "BatchNorm1d", (4, 3, 5)),
    (nn.BatchNorm2d, "BatchNorm2d", (3, 2, 4, 5)),
])
def test_batchnorm(cls, torch_name, shape):
    channels = shape[1]
    ours, theirs = _batchnorm_pair(cls, getattr(torch.nn, torch_name), channels)
    # several training steps: outputs, all gradients and the running statistics
    for step in range(4):
        x, tx = pair(*shape, seed=step)
        y, ty = ours(x * 2.0 + 1.0), theirs(tx * 2.0 + 1.0)
        close(y, ty)
        g = np.random.default_rng(10 + step).standard_normal(shape)
        ours.zero_grad()
        theirs.zero_grad()
        y.backward(g)
        ty.backward(torch.tensor(g))
        close(x.grad, tx.grad, atol=1e-9)
        close(ours.weight.grad, theirs.weight.grad, atol=1e-9)
        close(ours.bias.grad, theirs.bias.grad, atol=1e-9)
        close(ours.running_mean.data, theirs.running_mean)
        close(ours.running_var.data, theirs.running_var)
    # evaluation: the running statistics are used
    ours.eval()
    theirs.eval()
    x, tx = pair(*shape, seed=99)
    y, ty = ours(x), theirs(tx)
    close(y, ty)
    g = np.ones(shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    close(x.grad, tx.grad)
    close(ours.weight.grad, theirs.weight.grad)


@pytest.mark.parametrize("normalized_shape,shape", [(5, (3, 5)), ((3, 4), (2, 3, 4))])
def test_layernorm(normalized_shape, shape):
    ours = nn.LayerNorm(normalized_shape).double()
    theirs = torch.nn.LayerNorm(normalized_shape).double()
    rng = np.random.default_rng(2)
    gamma, beta = rng.standard_normal(ours.weight.shape), rng.standard_normal(ours.bias.shape)
    ours.weight.data[...], ours.bias.data[...] = gamma, beta
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(gamma))
        theirs.bias.copy_(torch.tensor(beta))
    x, tx = pair(*shape)
    y, ty = ours(x), theirs(tx)
    close(y, ty)
    g = rng.standard_normal(shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    close(x.grad, tx.grad, atol=1e-9)
    close(ours.weight.grad, theirs.weight.grad, atol=1e-9)
    close(ours.bias.grad, theirs.bias.grad, atol=1e-9)


def _loss_pair(ours, theirs, x, tx, target, torch_target):
    loss, tloss = ours(x, target), theirs(tx, torch_target)
    close(loss, tloss)
    g = np.random.default_rng(3).standard_normal(loss.shape)
    loss.backward(g)
    tloss.backward(torch.tensor(g))
    close(x.grad, tx.grad)


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.int64])
def test_cross_entropy_with_narrow_integer_targets_and_a_large_batch(dtype):
    # class × batch positions overflow uint8 (and would wrap) unless widened
    rng = np.random.default_rng(0)
    x, tx = pair(300, 10)
    indices = rng.integers(0, 10, 300)
    _loss_pair(nn.CrossEntropyLoss("none"), torch.nn.CrossEntropyLoss(reduction="none"),
               x, tx, indices.astype(dtype), torch.tensor(indices))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("kind", ["indices", "one_hot", "list"])
def test_cross_entropy(reduction, kind):
    x, tx = pair(5, 4)
    indices = np.array([3, 0, 1, 1, 2])
    target = {"indices": indices, "one_hot": np.eye(4)[indices],
              "list": indices.tolist()}[kind]
    torch_target = torch.tensor(indices) if kind != "one_hot" else torch.tensor(target)
    _loss_pair(nn.CrossEntropyLoss(reduction), torch.nn.CrossEntropyLoss(reduction=reduction),
               x, tx, target, torch_target)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse(reduction):
    x, tx = pair(3, 4)
    target = np.random.default_rng(9).standard_normal((3, 4))
    _loss_pair(nn.MSELoss(reduction), torch.nn.MSELoss(reduction=reduction), x, tx,
               Tensor(target), torch.tensor(target))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits(reduction):
    x, tx = pair(3, 4)
    target = np.random.default_rng(9).uniform(size=(3, 4))
    _loss_pair(nn.BCEWithLogitsLoss(reduction), torch.nn.BCEWithLogitsLoss(reduction=reduction),
               x, tx, target.tolist(), torch.tensor(target))


def test_sum_squared_error_is_half_mse_sum():
    y, t = np.arange(6.0).reshape(2, 3), np.ones((2, 3))
    expected = 0.5 * ((y - t) ** 2).sum()
    assert nn.SumSquaredError()(y, t).item() == pytest.approx(expected)
    assert (0.5 * nn.MSELoss("sum")(y, t)).item() == pytest.approx(expected)
