"""``numerical_gradient`` and ``gradcheck`` themselves: they must pass correct
operations and catch a wrong backward rule."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import Function, GradcheckError, Tensor, gradcheck, numerical_gradient


class WrongSquare(Function):
    """x² with a deliberately wrong derivative: x instead of 2x."""

    rule = "d(x²)/dx = x (wrong on purpose)"

    def forward(self, x):
        return x * x

    def backward(self, g):
        return g * self.inputs[0]


class RightSquare(Function):
    rule = "d(x²)/dx = 2x"

    def forward(self, x):
        return x * x

    def backward(self, g):
        return g * self.inputs[0] * 2.0


class ScaleBothWrong(Function):
    """a·b, with the gradient of b wrong only at one element."""

    def forward(self, a, b):
        return a * b

    def backward(self, g):
        a, b = self.inputs
        wrong = np.ones(b.shape)
        wrong[1, 2] = 1.5
        return g * b, g * a * Tensor(wrong)


def test_numerical_gradient_of_square_is_2x():
    x = np.array([[0.5, -1.0, 2.0], [3.0, 0.0, -0.25]])
    before = x.copy()
    grad = numerical_gradient(lambda v: (v ** 2).sum(), x)
    np.testing.assert_allclose(grad, 2 * x, rtol=1e-7, atol=1e-8)
    np.testing.assert_array_equal(x, before)  # every nudge undone
    t = Tensor(x.copy())
    np.testing.assert_allclose(numerical_gradient(lambda v: (v * v).sum(), t), 2 * x,
                               rtol=1e-7, atol=1e-8)
    assert numerical_gradient(lambda v: (v * v).sum(), t).dtype == np.float64


def test_numerical_gradient_reads_a_parameter_used_elsewhere():
    w = Tensor(np.array([1.0, 2.0]))
    data = np.array([3.0, -1.0])
    grad = numerical_gradient(lambda _: (w * data).sum(), w)
    np.testing.assert_allclose(grad, data, rtol=1e-8)


def test_numerical_gradient_rejects_integers():
    with pytest.raises(TypeError, match="floating-point"):
        numerical_gradient(lambda v: v.sum(), np.arange(3))


def test_gradcheck_passes_a_correct_function():
    x = Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    report = gradcheck(lambda t: RightSquare()(t), [x])
    assert report.ok and bool(report)
    assert report.inputs[0].max_abs_error < 1e-6
    assert "all gradients agree" in report.explain()


def test_gradcheck_catches_a_wrong_backward():
    x = Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    report = gradcheck(lambda t: WrongSquare()(t).sum(), [x])
    assert not report.ok and not bool(report)
    check = report.inputs[0]
    assert not check.ok
    assert check.max_abs_error == pytest.approx(2.0, rel=1e-4)  # |x - 2x| at x = 2
    assert check.worst_index == (2,)
    assert check.analytic_at_worst == pytest.approx(2.0)
    assert check.numerical_at_worst == pytest.approx(4.0)
    text = report.explain()
    assert "MISMATCH" in text and "FAILED" in text and "hints" in text


def test_gradcheck_raise_names_input_element_and_hints():
    a = Tensor(np.ones((2, 3)), requires_grad=True)
    b = Tensor(np.arange(6.0).reshape(2, 3) + 1.0, requires_grad=True)
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda a, b: ScaleBothWrong()(a, b), [a, b], raise_on_failure=True)
    message = str(info.value)
    assert "input 1" in message and "FAILED" in message
    assert "worst element (1, 2)" in message
    assert "hints" in message and "kink" in message
    assert "input 0 shape (2, 3) float64" in message and "ok" in message
    assert isinstance(info.value, AssertionError)  # pytest shows it as a failed assert


def test_gradcheck_float32_hint():
    x = Tensor(np.array([0.5, -1.0, 2.0], np.float32), requires_grad=True)
    report = gradcheck(lambda t: WrongSquare()(t), [x])
    assert not report.ok
    assert "float64" in report.explain()  # the hint: check in float64
    x64 = Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    assert "use float64" not in gradcheck(lambda t: WrongSquare()(t), [x64]).explain()


def test_gradcheck_skips_inputs_without_grad_and_needs_one():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    c = Tensor(np.array([3.0, 4.0]))
    report = gradcheck(lambda x, c: x * c, [x, c])
    assert report.ok and [check.index for check in report.inputs] == [0]
    with pytest.raises(ValueError, match="requires grad"):
        gradcheck(lambda c: c * 2.0, [c])
    with pytest.raises(TypeError, match="Tensor"):
        gradcheck(lambda x: 1.0, [x])


def test_gradcheck_leaves_inputs_unchanged():
    values = np.array([0.3, -0.7])
    x = Tensor(values.copy(), requires_grad=True)
    gradcheck(lambda t: t.exp(), [x])
    np.testing.assert_array_equal(x.data, values)
