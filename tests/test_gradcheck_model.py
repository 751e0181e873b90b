"""``gradcheck_model``: backprop vs numerical gradients of a whole model, with timings."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import Function, nn
from chainrule.gradcheck import ModelGradcheckReport, gradcheck_model, numerical_gradient


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    return rng.standard_normal((5, 4)).astype(np.float32), np.array([0, 1, 2, 0, 1])


def test_a_tiny_mlp_agrees_to_better_than_1e_6(batch):
    x, t = batch
    model = nn.MLP([4, 6, 3], activations="tanh", seed=0)
    report = gradcheck_model(model, nn.CrossEntropyLoss(), x, t)
    assert isinstance(report, ModelGradcheckReport) and report.ok and bool(report)
    assert [p.name for p in report.parameters] == [n for n, _ in model.named_parameters()]
    for p in report.parameters:
        assert p.max_abs_diff < 1e-6 and p.checked == p.size and not p.extrapolated
    assert report.backprop_seconds > 0 and report.numerical_seconds > 0
    assert report.speedup == pytest.approx(report.numerical_seconds / report.backprop_seconds)


def test_the_report_numbers_match_an_independent_numerical_gradient(batch):
    x, t = batch
    model = nn.MLP([4, 6, 3], activations="tanh", seed=1)
    report = gradcheck_model(model, nn.CrossEntropyLoss(), x, t)
    double = model.to("float64")  # in place: compute our own reference in float64
    loss = nn.CrossEntropyLoss()
    loss(double(x.astype(np.float64)), t).backward()
    for check, (name, param) in zip(report.parameters, double.named_parameters()):
        numerical = numerical_gradient(lambda _: loss(double(x.astype(np.float64)), t),
                                       param, eps=1e-6)
        expected = np.abs(param.grad.data - numerical).max()
        assert check.max_abs_diff == pytest.approx(expected, abs=1e-9), name


def test_the_model_itself_is_left_untouched(batch):
    x, t = batch
    model = nn.MLP([4, 6, 3], seed=0)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    gradcheck_model(model, nn.CrossEntropyLoss(), x, t)
    for name, value in model.state_dict().items():
        assert value.dtype == np.float32
        np.testing.assert_array_equal(value, before[name])
    assert all(p.grad is None for p in model.parameters())


def test_sampling_checks_n_elements_and_flags_the_extrapolated_time(batch):
    x, t = batch
    model = nn.MLP([4, 6, 3], seed=0)
    report = gradcheck_model(model, nn.CrossEntropyLoss(), x, t, sample=3, seed=1)
    assert report.ok and report.extrapolated
    by_name = {p.name: p for p in report.parameters}
    weight, bias = by_name["layers.0.weight"], by_name["layers.2.bias"]
    assert weight.checked == 3 and weight.size == 24 and weight.extrapolated
    assert bias.checked == 3 and not bias.extrapolated  # 3 elements: all of them
    text = str(report)
    assert "3 of 24" in text and "*extrapolated" in text
    data = report.to_dict()
    assert data["numerical_extrapolated"] is True and data["sample"] == 3
    assert data["parameters"][0]["numerical_extrapolated"] is True


def test_dropout_masks_are_held_fixed_during_the_check(batch):
    x, t = batch
    model = nn.MLP([4, 8, 3], dropout=0.5, batch_norm=True, seed=0)  # training mode
    assert gradcheck_model(model, nn.CrossEntropyLoss(), x, t).ok


class _WrongReLU(Function):
    """ReLU whose backward forgets the mask: passes the gradient everywhere."""

    def forward(self, x):
        return np.maximum(x, 0.0)

    def backward(self, g):
        return g


class _BrokenNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 6, seed=0)
        self.fc2 = nn.Linear(6, 3, seed=1)

    def forward(self, x):
        return self.fc2(_WrongReLU()(self.fc1(x)))


def test_a_layer_with_a_wrong_backward_fails_the_check(batch):
    x, t = batch
    report = gradcheck_model(_BrokenNet(), nn.CrossEntropyLoss(), x, t)
    assert not report.ok
    failed = {p.name for p in report.parameters if not p.ok}
    assert failed == {"fc1.weight", "fc1.bias"}  # fc2 sits after the broken layer
    assert "MISMATCH" in str(report) and "fc1.weight" in str(report)
    assert report.to_dict()["ok"] is False


def test_the_table_lists_every_parameter_and_the_speed_up(batch):
    x, t = batch
    text = str(gradcheck_model(nn.TwoLayerNet(4, 5, 3, seed=0), nn.CrossEntropyLoss(), x, t))
    for name in ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"):
        assert name in text
    assert "times faster" in text and "OK" in text and "extrapolated" not in text


@pytest.mark.parametrize("kwargs, error, message", [
    ({"sample": 0}, ValueError, "sample"),
    ({"sample": 2.5}, ValueError, "sample"),
])
def test_bad_arguments_are_refused(batch, kwargs, error, message):
    x, t = batch
    with pytest.raises(error, match=message):
        gradcheck_model(nn.MLP([4, 3]), nn.CrossEntropyLoss(), x, t, **kwargs)


def test_a_plain_function_is_pointed_to_gradcheck(batch):
    x, t = batch
    with pytest.raises(TypeError, match="gradcheck()"):
        gradcheck_model(lambda x: x, nn.CrossEntropyLoss(), x, t)
