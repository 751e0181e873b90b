"""Layers and losses match their ``torch.nn`` equivalents with the same weights copied
in (Linear's weight transposed: chainrule stores (in, out), PyTorch (out, in))."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule.functional as F
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
        assert ours.num_batches_tracked.item() == theirs.num_batches_tracked.item() == step + 1
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


def test_batchnorm_momentum_none_averages_all_batches_as_torch():
    ours, theirs = nn.BatchNorm1d(3, momentum=None).double(), \
        torch.nn.BatchNorm1d(3, momentum=None).double()
    for step in range(3):
        x, tx = pair(5, 3, seed=step)
        ours(x)
        theirs(tx)
    close(ours.running_mean.data, theirs.running_mean)
    close(ours.running_var.data, theirs.running_var)
    assert ours.num_batches_tracked.item() == theirs.num_batches_tracked.item() == 3


def test_batchnorm_state_dicts_load_both_ways_and_without_the_counter():
    theirs = torch.nn.BatchNorm2d(3).double()
    for step in range(2):
        theirs(torch.tensor(np.random.default_rng(step).standard_normal((4, 3, 2, 2))))
    ours = nn.BatchNorm2d(3)
    ours.load_torch_state_dict(theirs.state_dict())  # strict: every key matches
    assert ours.num_batches_tracked.item() == 2 and ours.num_batches_tracked.dtype == np.int64
    close(ours.running_mean.data.astype(np.float64), theirs.running_mean, atol=1e-7)
    back = torch.nn.BatchNorm2d(3)
    back.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    assert back.num_batches_tracked.item() == 2
    # a state dict saved before the counter existed still loads, strictly
    older = {k: v for k, v in nn.BatchNorm2d(3).state_dict().items()
             if k != "num_batches_tracked"}
    result = ours.load_state_dict(older)
    assert result.missing_keys == [] and ours.num_batches_tracked.item() == 2
    with pytest.raises(ValueError, match="missing keys.*running_var"):
        ours.load_state_dict({k: v for k, v in older.items() if k != "running_var"})


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


@pytest.mark.parametrize("padding_idx", [None, 0, -2])
def test_embedding(padding_idx):
    """Rows picked by ids of shape (N, T), repeated ids' gradients added, the padding
    row's left at zero: as torch.nn.Embedding with the same table."""
    ours = nn.Embedding(7, 5, padding_idx=padding_idx, seed=3).double()
    theirs = torch.nn.Embedding(7, 5, padding_idx=padding_idx).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.data))
    ids = np.array([[1, 0, 1, 5], [6, 5, 5, 0], [1, 1, 1, 2]])
    y, ty = ours(ids), theirs(torch.tensor(ids))
    close(y, ty)
    g = np.random.default_rng(2).standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    close(ours.weight.grad, theirs.weight.grad)
    if padding_idx is not None:
        assert not ours.weight.data[padding_idx].any()
        assert not ours.weight.grad.data[padding_idx].any()


def test_embedding_double_backward():
    """create_graph records the scatter-add, so a gradient of the gradient works:
    d/dW Σ v·∂(Σ e²)/∂W, with e = W[ids], as torch computes it."""
    import chainrule as cr

    data = np.random.default_rng(0).standard_normal((6, 3))
    v = np.random.default_rng(1).standard_normal((6, 3))
    ids = np.array([[0, 2, 2], [5, 0, 2]])
    weight = Tensor(data, requires_grad=True)
    g, = cr.grad((F.embedding(ids, weight, padding_idx=2) ** 2).sum(), [weight],
                 create_graph=True)
    (g * Tensor(v)).sum().backward()
    tw = torch.tensor(data, requires_grad=True)
    tg, = torch.autograd.grad(
        (torch.nn.functional.embedding(torch.tensor(ids), tw, padding_idx=2) ** 2).sum(),
        [tw], create_graph=True)
    (tg * torch.tensor(v)).sum().backward()
    close(g, tg)
    close(weight.grad, tw.grad)


@pytest.mark.parametrize("classes", [5, 700])  # both layouts: transposed and rows
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore_index", [-100, 3])
def test_cross_entropy_on_sequences_with_ignored_targets(classes, reduction, ignore_index):
    """(N, T, V) logits and (N, T) targets, some of them ignore_index (padding): torch
    wants the classes on axis 1, so its logits are (N, V, T)."""
    rng = np.random.default_rng(4)
    x, tx = pair(2, 5, classes, seed=1)
    t = rng.integers(0, classes, (2, 5))
    t[0, 1], t[1, 3], t[1, 4] = ignore_index, ignore_index, ignore_index
    loss = F.cross_entropy(x, t, reduction, ignore_index=ignore_index)
    t_loss = torch.nn.functional.cross_entropy(tx.permute(0, 2, 1), torch.tensor(t),
                                               reduction=reduction,
                                               ignore_index=ignore_index)
    close(loss, t_loss)
    g = rng.standard_normal(loss.shape)
    loss.backward(g)
    t_loss.backward(torch.tensor(g))
    close(x.grad, tx.grad)
    module_loss = nn.CrossEntropyLoss(reduction, ignore_index=ignore_index)(x, t)
    close(module_loss, t_loss)


def test_cross_entropy_with_every_target_ignored_is_nan_as_in_torch():
    x = Tensor(np.zeros((2, 3)), requires_grad=True)
    loss = F.cross_entropy(x, np.array([-100, -100]))
    assert np.isnan(loss.item())
    assert F.cross_entropy(x, np.array([-100, -100]), "sum").item() == 0.0
