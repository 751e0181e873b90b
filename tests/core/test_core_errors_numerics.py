"""Error messages a learner can act on, numerically stable functions at ±1e4, and erf's
accuracy."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import chainrule.functional as F
from chainrule import Tensor

# --------------------------------------------------------------------------- errors
BROADCASTING = {
    "add": F.add, "sub": F.sub, "mul": F.mul, "div": F.div, "pow": F.pow,
    "maximum": F.maximum, "minimum": F.minimum,
    "where": lambda a, b: F.where(True, a, b),
    "operator+": lambda a, b: a + b, "operator*": lambda a, b: a * b,
}


@pytest.mark.parametrize("op", BROADCASTING.values(), ids=BROADCASTING.keys())
def test_broadcasting_mismatch_names_both_shapes(op):
    a = Tensor(np.ones((2, 3)), requires_grad=True)
    b = Tensor(np.ones((4,)))
    with pytest.raises(ValueError) as info:
        op(a, b)
    message = str(info.value)
    assert "(2, 3)" in message and "(4,)" in message, message
    assert "broadcast" in message


def test_broadcasting_error_points_at_the_mismatched_axis():
    with pytest.raises(ValueError, match="MISMATCH") as info:
        Tensor(np.ones((5, 2, 3))) + Tensor(np.ones((4, 3)))
    (bad,) = [line for line in str(info.value).splitlines() if "MISMATCH" in line]
    assert "-2" in bad and "2" in bad and "4" in bad  # axis -2: 2 vs 4


@pytest.mark.parametrize("sa, sb", [((2, 3), (4, 5)), ((3,), (4,)), ((2, 3, 4), (5,)),
                                    ((3,), (4, 2)), ((2, 3, 4), (3, 4, 5))])
def test_matmul_mismatch_names_both_shapes(sa, sb):
    with pytest.raises(ValueError) as info:
        Tensor(np.ones(sa)) @ Tensor(np.ones(sb))
    message = str(info.value)
    assert str(sa) in message and str(sb) in message, message


def test_matmul_of_a_scalar_says_to_use_multiplication():
    with pytest.raises(ValueError, match=r"\*"):
        F.matmul(Tensor(2.0), Tensor(np.ones(3, np.float32)))


def test_matmul_batch_mismatch_names_both_shapes():
    with pytest.raises(ValueError) as info:
        Tensor(np.ones((2, 3, 4))) @ Tensor(np.ones((5, 4, 2)))
    assert "(2, 3, 4)" in str(info.value) and "(5, 4, 2)" in str(info.value)


BAD_AXIS = {
    "sum": lambda x: x.sum(3), "mean": lambda x: x.mean(-4), "max": lambda x: x.max(5),
    "min": lambda x: x.min((0, 7)), "var": lambda x: F.var(x, 3),
    "logsumexp": lambda x: F.logsumexp(x, 3), "softmax": lambda x: F.softmax(x, 3),
    "log_softmax": lambda x: F.log_softmax(x, -4), "squeeze": lambda x: x.squeeze(3),
    "unsqueeze": lambda x: x.unsqueeze(5), "concatenate": lambda x: F.concatenate([x, x], 3),
    "stack": lambda x: F.stack([x, x], 5), "split": lambda x: F.split(x, 2, axis=3),
    "flatten": lambda x: F.flatten(x, 4), "swapaxes": lambda x: F.swapaxes(x, 0, 3),
    "transpose": lambda x: F.transpose(x, (0, 1, 3)),
    "transpose-wraps-to-valid": lambda x: F.transpose(x, (0, 1, 5)),  # 5 is not axis 2
    "permute": lambda x: x.permute(3, 4, 5),
}


@pytest.mark.parametrize("op", BAD_AXIS.values(), ids=BAD_AXIS.keys())
def test_bad_axis_names_the_tensor_shape(op):
    x = Tensor(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match=r"\(2, 3, 4\)"):
        op(x)


def test_repeated_axis_and_non_integer_axis():
    x = Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match="twice"):
        x.sum((1, -1))
    with pytest.raises(TypeError, match="axis"):
        x.sum(1.5)
    with pytest.raises(ValueError, match="squeeze: axis 2 is out of range"):
        x.squeeze(2)  # (an axis of size 2 is left as it is: see test_core_api_parity)


def test_reshape_to_a_wrong_size_names_both_shapes():
    x = Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError) as info:
        x.reshape(4, 2)
    message = str(info.value)
    assert "(2, 3)" in message and "(4, 2)" in message and "6" in message


def test_shape_operation_errors():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)|\(2, 4\).*\(2, 3\)"):
        F.stack([Tensor(np.ones((2, 3))), Tensor(np.ones((2, 4)))])
    with pytest.raises(ValueError, match="tensor 1"):
        F.concatenate([Tensor(np.ones((2, 3))), Tensor(np.ones((3, 3)))], axis=1)
    with pytest.raises(ValueError, match="equal sections"):
        F.split(Tensor(np.ones((5,))), 2)
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 4\)"):
        F.broadcast_to(Tensor(np.ones(3)), (2, 4))
    with pytest.raises(IndexError, match=r"\(2, 3\)"):
        Tensor(np.ones((2, 3)))[5]
    with pytest.raises(ValueError, match="at least one"):
        F.concatenate([])
    with pytest.raises(ValueError, match=r"-1.*\(3,\)"):  # no size to keep on a new axis
        Tensor(np.ones(3)).expand(-1, 3)


def test_cross_entropy_target_errors():
    logits = Tensor(np.zeros((4, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"\(5,\).*\(4, 3\)") as info:
        F.cross_entropy(logits, np.zeros(5, dtype=np.int64))
    assert "(4,)" in str(info.value)  # says which shape would be right
    with pytest.raises(ValueError, match="class 3 is out of range for 3 classes"):
        F.cross_entropy(logits, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="class -1"):
        F.cross_entropy(logits, np.array([0, -1, 2, 1]))
    with pytest.raises(ValueError, match=r"\(4, 2\)"):
        F.cross_entropy(logits, np.zeros((4, 2)))  # float target of the wrong shape
    with pytest.raises(TypeError, match="dtype"):
        F.cross_entropy(logits, np.array([True, False, True, True]))
    with pytest.raises(ValueError, match="scalar"):
        F.cross_entropy(Tensor(1.0), np.array(0))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(logits, np.zeros(4, dtype=np.int64), reduction="avg")


def test_loss_shape_errors():
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        F.mse_loss(Tensor(np.ones(3)), np.ones(4))
    with pytest.raises(ValueError, match=r"\(3,\).*\(3, 1\)"):
        F.binary_cross_entropy_with_logits(Tensor(np.ones(3)), np.ones((3, 1)))
    with pytest.raises(ValueError, match="features"):
        F.linear(Tensor(np.ones((2, 3))), Tensor(np.ones((4, 5))))


def test_clip_needs_a_bound():
    with pytest.raises(ValueError, match="min, max"):
        F.clip(Tensor(np.ones(2)))


# --------------------------------------------------------------------------- numerics
@pytest.fixture
def strict_numerics():
    """Any overflow, division by zero, invalid operation or warning is an error.

    Underflow is the one exception: exp(-2e4) correctly rounds to 0, which every stable
    implementation (PyTorch's included) relies on; it is not a loss of accuracy.
    """
    with np.errstate(all="raise", under="ignore"), warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


EXTREME = np.array([1e4, -1e4, 0.0, 50.0, -50.0])

STABLE = {
    "sigmoid": (F.sigmoid, lambda x: np.where(x > 0, 1.0, 0.0) if abs(x) > 100
                else 1 / (1 + np.exp(-x))),
    "softplus": (F.softplus, lambda x: max(x, 0.0) if abs(x) > 100 else np.log1p(np.exp(x))),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", STABLE)
def test_elementwise_stable_functions_at_extremes(strict_numerics, name, dtype):
    fn, reference = STABLE[name]
    x = Tensor(EXTREME.astype(dtype), requires_grad=True)
    y = fn(x)
    assert y.dtype == dtype and np.all(np.isfinite(y.data))
    np.testing.assert_allclose(y.data, [reference(v) for v in EXTREME], rtol=1e-5, atol=1e-30)
    y.sum().backward()
    assert np.all(np.isfinite(x.grad.data))
    # σ'(x) = σ(1-σ) for sigmoid, σ(x) for softplus: 0 or 1 at ±1e4, ½ or ¼ at 0
    expected = {"sigmoid": [0, 0, 0.25], "softplus": [1, 0, 0.5]}[name]
    np.testing.assert_allclose(x.grad.data[:3], expected, atol=1e-30)


ROWS = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, 1e4], [0.0, 1.0, 2.0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_family_at_extremes(strict_numerics, dtype):
    x = Tensor(ROWS.astype(dtype), requires_grad=True)
    p = F.softmax(x, -1)
    logp = F.log_softmax(x, -1)
    lse = F.logsumexp(x, -1)
    for out in (p, logp, lse):
        assert out.dtype == dtype and np.all(np.isfinite(out.data))
    np.testing.assert_allclose(p.data[0], [1, 0, 0], atol=1e-30)
    np.testing.assert_allclose(p.data[1], [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(logp.data[0], [0, -2e4, -1e4], rtol=1e-6)
    np.testing.assert_allclose(lse.data[:3], [1e4, -1e4 + np.log(3), 1e4 + np.log(3)],
                               rtol=1e-6)
    w = np.arange(12.0).reshape(4, 3).astype(dtype)
    ((p * w).sum() + (logp * w).sum() + lse.sum()).backward()
    assert np.all(np.isfinite(x.grad.data))
    # d(Σ w·log_softmax)/dx = w - softmax·Σw; d lse/dx = softmax; softmax row 0 is one-hot
    assert x.grad.data[0] == pytest.approx([0 - 1 * 3 + 1, 1, 2], abs=1e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("target_kind", ["indices", "one-hot"])
def test_cross_entropy_at_extremes(strict_numerics, dtype, target_kind):
    x = Tensor(ROWS.astype(dtype), requires_grad=True)
    indices = np.array([1, 0, 2, 2])
    target = indices if target_kind == "indices" else np.eye(3, dtype=dtype)[indices]
    loss = F.cross_entropy(x, target, reduction="none")
    assert loss.dtype == dtype and np.all(np.isfinite(loss.data))
    # -log softmax: 2e4 for the hopeless row, ln 3 for the tied rows
    np.testing.assert_allclose(loss.data[:3], [2e4, np.log(3), np.log(3)], rtol=1e-5)
    loss.sum().backward()
    assert np.all(np.isfinite(x.grad.data))
    np.testing.assert_allclose(x.grad.data[0], [1, -1, 0], atol=1e-6)  # softmax - onehot


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits_at_extremes(strict_numerics, dtype):
    x = Tensor(np.array([1e4, -1e4, 1e4, -1e4, 0.0], dtype), requires_grad=True)
    t = Tensor(np.array([1.0, 0.0, 0.0, 1.0, 0.5], dtype), requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    assert loss.dtype == dtype and np.all(np.isfinite(loss.data))
    np.testing.assert_allclose(loss.data, [0, 0, 1e4, 1e4, np.log(2)], rtol=1e-6, atol=1e-30)
    loss.sum().backward()
    assert np.all(np.isfinite(x.grad.data)) and np.all(np.isfinite(t.grad.data))
    np.testing.assert_allclose(x.grad.data, [0, 0, 1, -1, 0], atol=1e-30)  # σ(x) - t
    np.testing.assert_allclose(t.grad.data, -x.data)  # d/dt = -x


def test_log_softmax_is_not_log_of_softmax():
    """A 1000-logit gap: softmax underflows to 0, log_softmax stays exact."""
    x = Tensor(np.array([0.0, -1000.0]))
    assert F.log_softmax(x).data[1] == pytest.approx(-1000.0)
    assert np.isfinite(F.logsumexp(Tensor(np.array([-1e300, -np.inf]))).item())


# --------------------------------------------------------------------------- erf and GELU
def _erf_points() -> np.ndarray:
    """Random values and a fine grid over all of erf's ranges, with their edges."""
    rng = np.random.default_rng(0)
    edges = [0.0, -0.0, 1e-300, 0.46875, -0.46875, 4.0, -4.0, 5.9, 8.0, 27.0]
    return np.concatenate([rng.standard_normal(4000) * 3, np.linspace(-10, 10, 4001), edges])


def test_erf_equals_the_standard_library_to_double_precision():
    """Cody's rational approximations in float64 (NumPy has no erf; math.erf is the C
    library's, correctly rounded or nearly so)."""
    x = _erf_points()
    expected = np.array([math.erf(v) for v in x])
    got = F.erf(Tensor(x)).data
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=5e-16, atol=0)


def test_erf_in_float32_is_within_a_few_float32_units():
    x = _erf_points().astype(np.float32)
    expected = np.array([math.erf(v) for v in x.astype(np.float64)])
    got = F.erf(Tensor(x)).data
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=4e-7)
    # more than one block of the blockwise evaluation (2¹⁵ values), in any shape
    big = np.random.default_rng(1).standard_normal((3, 40000)).astype(np.float32)
    np.testing.assert_array_equal(F.erf(Tensor(big)).data.reshape(-1),
                                  F.erf(Tensor(big.reshape(-1))).data)
    assert abs(F.erf(Tensor(big)).data[2, 39999] - math.erf(big[2, 39999])) < 4e-7


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_erf_and_gelu_at_extremes(strict_numerics, dtype):
    x = Tensor(np.array([1e4, -1e4, 0.0, 50.0, -50.0], dtype), requires_grad=True)
    np.testing.assert_array_equal(F.erf(x).data, [1, -1, 0, 1, -1])
    for approximate in ("none", "tanh"):
        x.grad = None
        y = F.gelu(x, approximate=approximate)
        assert y.dtype == dtype
        np.testing.assert_allclose(y.data, [1e4, 0, 0, 50, 0], atol=1e-30)
        y.sum().backward()
        # the slope: 1 far right, 0 far left, Φ(0) = ½ at 0
        np.testing.assert_allclose(x.grad.data, [1, 0, 0.5, 1, 0], atol=1e-30)
    special = F.erf(Tensor(np.array([np.inf, -np.inf, np.nan], dtype))).data
    np.testing.assert_array_equal(special, [1, -1, np.nan])


def test_gelu_names_its_forms():
    with pytest.raises(ValueError, match="'none' .* or 'tanh'"):
        F.gelu(Tensor([1.0]), approximate="erf")
