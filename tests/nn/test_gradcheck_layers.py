"""Backpropagation through every layer and loss agrees with numerical differentiation
(float64, small odd shapes, parameters checked together with the input)."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
import chainrule.functional as F
from chainrule import Tensor, gradcheck, nn


def rand(*shape, seed=0, low=None):
    rng = np.random.default_rng(seed)
    data = rng.standard_normal(shape)
    if low is not None:  # keep away from kinks (relu at 0)
        data = np.sign(data) * (np.abs(data) + low)
    return Tensor(data, requires_grad=True)


def check(module, x, *extra):
    """gradcheck of module(x, *extra) with respect to x and every parameter."""
    params = list(module.parameters())
    report = gradcheck(lambda x, *_: module(x, *extra), [x, *params])
    assert report.ok, report.explain()


@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 5), (5,)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear(shape, bias):
    check(nn.Linear(5, 4, bias=bias, seed=1).double(), rand(*shape))


@pytest.mark.parametrize("module", [nn.ReLU(), nn.LeakyReLU(0.1), nn.GELU(), nn.GELU("tanh"),
                                    nn.Sigmoid(), nn.Tanh(),
                                    nn.Identity(), nn.Softmax(), nn.Softmax(axis=0),
                                    nn.Flatten(), nn.Flatten(0, 1)])
def test_activations_and_reshapes(module):
    check(module, rand(3, 2, 5, low=0.05))


@pytest.mark.parametrize("cls", [nn.Dropout, nn.Dropout2d])
@pytest.mark.parametrize("training", [True, False])
def test_dropout_with_fixed_mask(cls, training):
    drop = cls(0.4)
    drop.train(training)

    def f(x):
        drop.rng = np.random.default_rng(7)  # the same mask on every call
        return drop(x)

    assert gradcheck(f, [rand(3, 4, 2, 3)]).ok


@pytest.mark.parametrize("shape", [(7, 3), (5, 3, 4)])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm1d(shape, training, affine):
    bn = nn.BatchNorm1d(3, affine=affine).double()
    if affine:  # non-trivial γ and β
        bn.weight.data[:] = [0.5, -1.5, 2.0]
        bn.bias.data[:] = [0.1, 0.2, -0.3]
    bn.running_mean.data[:] = [0.3, -0.2, 0.1]
    bn.running_var.data[:] = [0.5, 2.0, 1.5]
    bn.train(training)
    # momentum 0: the running statistics must not drift while gradcheck calls forward
    bn.momentum = 0.0
    check(bn, rand(*shape))


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm2d(training):
    bn = nn.BatchNorm2d(2, momentum=0.0).double()
    bn.weight.data[:] = [1.5, -0.5]
    bn.bias.data[:] = [0.2, 0.1]
    bn.running_var.data[:] = [0.7, 1.3]
    bn.train(training)
    check(bn, rand(3, 2, 3, 2))


@pytest.mark.parametrize("normalized_shape,shape", [(5, (3, 5)), ((2, 3), (4, 2, 3)),
                                                    (3, (2, 2, 3))])
def test_layernorm(normalized_shape, shape):
    ln = nn.LayerNorm(normalized_shape).double()
    rng = np.random.default_rng(3)
    ln.weight.data[...] = rng.standard_normal(ln.weight.shape)
    ln.bias.data[...] = rng.standard_normal(ln.bias.shape)
    check(ln, rand(*shape))


@pytest.mark.parametrize("op", ["batch_norm", "layer_norm", "linear"])
def test_second_derivative_through_fused_primitives(op):
    """create_graph=True: the backward of the fused primitive is itself recorded, so the
    gradient of a function of the gradient is right too (for every input)."""
    x = rand(2, 4, 3)
    w = Tensor(np.array([0.5, 1.5, -1.0]), requires_grad=True)
    matrix = rand(3, 2, seed=1)
    bias = rand(2, seed=2)

    def gradient_norm(x, matrix, bias):
        with chainrule.enable_grad():  # gradcheck's numerical pass runs under no_grad
            if op == "batch_norm":
                y = F.batch_norm(x.reshape(8, 3), None, None, w, bias[:1].expand(3),
                                 training=True)
            elif op == "layer_norm":
                y = F.layer_norm(x, 3, w)
            else:
                y = F.linear(x, matrix, bias)
            inputs = [x, matrix, bias] if op == "linear" else [x]
            grads = chainrule.grad((y * y * y).sum(), inputs, create_graph=True)
            return sum((g * g).sum() for g in grads)

    report = gradcheck(gradient_norm, [x, matrix, bias], atol=1e-4)
    assert report.ok, report.explain()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_losses(reduction):
    logits = rand(4, 3)
    indices = np.array([0, 2, 1, 2])
    one_hot = np.eye(3)[indices]
    check(nn.CrossEntropyLoss(reduction), logits, indices)
    check(nn.CrossEntropyLoss(reduction), logits, one_hot)
    target = np.random.default_rng(1).uniform(size=(4, 3))
    check(nn.MSELoss(reduction), logits, target)
    check(nn.BCEWithLogitsLoss(reduction), logits, target)


def test_sum_squared_error():
    check(nn.SumSquaredError(), rand(2, 3), np.zeros((2, 3)))


@pytest.mark.parametrize("batch_norm", [False, True])
def test_whole_mlp(batch_norm):
    model = nn.MLP([3, 4, 2], activations="tanh", batch_norm=batch_norm, seed=0).double()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.momentum = 0.0
    check(model, rand(5, 3))
