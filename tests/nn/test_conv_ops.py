"""Convolution and pooling operations: gradchecks in float64 with odd sizes, parity with
torch.nn.functional (forward and backward), im2col/col2im adjointness, the max-pool tie
rule, double backward, and the error messages."""

from __future__ import annotations

import numpy as np
import pytest
from conv_checks import double_backward

import chainrule
import chainrule.functional as F
import chainrule.ops.conv as conv_ops
from chainrule import Tensor, gradcheck

# (N, C, H, W), out_channels, kernel, stride, padding, dilation, groups, bias
CONV_CASES = {
    "plain": ((2, 3, 5, 7), 4, 3, 1, 0, 1, 1, True),
    "stride2-pad1": ((2, 2, 7, 6), 3, 3, 2, 1, 1, 1, True),
    "dilation2": ((1, 2, 7, 8), 2, 3, 1, 1, 2, 1, True),
    "groups2": ((2, 4, 5, 6), 6, 3, 1, 1, 1, 2, True),
    "rect-kernel": ((2, 2, 6, 5), 3, (2, 3), (2, 1), (1, 0), 1, 1, False),
    "kernel>stride": ((1, 3, 8, 7), 2, 4, 3, 1, 1, 1, True),
    "1x1": ((2, 3, 4, 5), 2, 1, 1, 0, 1, 1, True),
    "everything": ((2, 4, 9, 8), 4, (3, 2), (2, 3), (2, 1), (2, 1), 2, True),
}


def conv_inputs(rng, case, dtype=np.float64):
    shape, out_channels, kernel, stride, padding, dilation, groups, bias = case
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = Tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)
    w = Tensor(rng.standard_normal((out_channels, shape[1] // groups, kh, kw)).astype(dtype),
               requires_grad=True)
    b = Tensor(rng.standard_normal(out_channels).astype(dtype), requires_grad=True) \
        if bias else None
    return x, w, b, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


def to_torch(torch, t):
    return torch.tensor(t.data, requires_grad=True) if t is not None else None


# --------------------------------------------------------------------------- conv2d
@pytest.mark.parametrize("name", list(CONV_CASES))
def test_conv2d_gradcheck(rng, name):
    x, w, b, kw = conv_inputs(rng, CONV_CASES[name])
    inputs = [x, w] + ([b] if b is not None else [])
    report = gradcheck(lambda x, w, b=None: F.conv2d(x, w, b, **kw), inputs)
    assert report.ok, report.explain()


@pytest.mark.parametrize("name", list(CONV_CASES))
def test_conv2d_matches_torch(torch, rng, name):
    x, w, b, kw = conv_inputs(rng, CONV_CASES[name])
    y = F.conv2d(x, w, b, **kw)
    tx, tw, tb = to_torch(torch, x), to_torch(torch, w), to_torch(torch, b)
    ty = torch.nn.functional.conv2d(tx, tw, tb, **kw)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w.grad.data, tw.grad.numpy(), rtol=1e-10, atol=1e-12)
    if b is not None:
        np.testing.assert_allclose(b.grad.data, tb.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_conv2d_float32_stays_float32_and_matches_torch(torch, rng):
    x, w, b, kw = conv_inputs(rng, CONV_CASES["everything"], dtype=np.float32)
    y = F.conv2d(x, w, b, **kw)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == np.float32
    tx, tw, tb = to_torch(torch, x), to_torch(torch, w), to_torch(torch, b)
    ty = torch.nn.functional.conv2d(tx, tw, tb, **kw)
    ty.sum().backward()
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(w.grad.data, tw.grad.numpy(), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_conv2d_skips_the_input_gradient_when_not_needed(rng, monkeypatch):
    """Images need no gradient: the transposed convolution must not even run."""
    x = Tensor(rng.standard_normal((2, 3, 6, 6)))  # requires_grad=False, like input images
    w = Tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)

    def forbidden(*args, **kwargs):
        raise AssertionError("the input gradient was computed although not needed")

    monkeypatch.setattr(conv_ops, "_conv_input_grad", forbidden)
    F.conv2d(x, w).sum().backward()
    assert x.grad is None and w.grad is not None


def test_conv2d_on_a_non_contiguous_input(rng):
    base = rng.standard_normal((5, 6, 3, 2))
    x = Tensor(base, requires_grad=True)
    w = Tensor(rng.standard_normal((2, 3, 2, 2)), requires_grad=True)
    report = gradcheck(lambda x, w: F.conv2d(x.permute(3, 2, 1, 0), w, padding=1), [x, w])
    assert report.ok, report.explain()


def test_conv2d_second_backward_with_retain_graph(rng):
    """The unfolded input is freed after the first backward, and rebuilt if needed."""
    x, w, b, kw = conv_inputs(rng, CONV_CASES["stride2-pad1"])
    y = F.conv2d(x, w, b, **kw).sum()
    y.backward(retain_graph=True)
    first = w.grad.data.copy()
    y.backward()
    np.testing.assert_allclose(w.grad.data, 2 * first)


def test_conv2d_dtypes(rng):
    """Integer pixels are computed in the weight's precision; two different float
    precisions are an error rather than a silent float64 network."""
    x = np.arange(2 * 1 * 4 * 4).reshape(2, 1, 4, 4)
    w = Tensor(np.ones((1, 1, 2, 2), dtype=np.float32), requires_grad=True)
    y = F.conv2d(x, w)
    assert y.dtype == np.float32 and y.shape == (2, 1, 3, 3)
    assert y.data[0, 0, 0, 0] == 0 + 1 + 4 + 5
    with pytest.raises(TypeError, match="input has dtype float64 but the weight has float32"):
        F.conv2d(x.astype(np.float64), w)
    with pytest.raises(TypeError, match="avg_pool2d: needs floating-point input"):
        F.avg_pool2d(x, 2)
    np.testing.assert_array_equal(F.max_pool2d(x, 2).data[0, 0], [[5, 7], [13, 15]])


# --------------------------------------------------------------------------- double backward


@pytest.mark.parametrize("name", ["stride2-pad1", "groups2", "dilation2"])
def test_conv2d_double_backward_gradcheck(rng, name):
    x, w, b, kw = conv_inputs(rng, CONV_CASES[name])
    report = gradcheck(double_backward(F.conv2d, kw), [x, w, b], atol=1e-4)
    assert report.ok, report.explain()


def test_conv2d_double_backward_matches_torch(torch, rng):
    x, w, b, kw = conv_inputs(rng, CONV_CASES["everything"])
    double_backward(F.conv2d, kw)(x, w, b).backward()
    tx, tw, tb = to_torch(torch, x), to_torch(torch, w), to_torch(torch, b)
    ty = torch.nn.functional.conv2d(tx, tw, tb, **kw)
    gx, gw = torch.autograd.grad((ty * ty).sum(), [tx, tw], create_graph=True)
    ((gx * gx).sum() + (gw * gw * gw).sum()).backward()
    for ours, theirs in ((x, tx), (w, tw), (b, tb)):
        np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-9)


# --------------------------------------------------------------------------- pooling
# (N, C, H, W), kernel, stride, padding
POOL_CASES = {
    "2x2": ((2, 3, 6, 8), 2, None, 0),
    "odd-size": ((2, 2, 7, 5), 2, None, 0),
    "overlap-pad": ((2, 2, 7, 6), 3, 2, 1),
    "rect": ((1, 3, 5, 9), (2, 3), (1, 2), (1, 1)),
    "stride1": ((2, 1, 5, 4), 2, 1, 0),
}


def distinct_values(rng, shape):
    """Values far apart (a permutation), so no max-pool window has a tie: gradcheck's
    nudges never change which element wins."""
    return rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float64) * 0.1


@pytest.mark.parametrize("pool", ["max", "avg"])
@pytest.mark.parametrize("name", list(POOL_CASES))
def test_pool_gradcheck(rng, pool, name):
    shape, kernel, stride, padding = POOL_CASES[name]
    fn = F.max_pool2d if pool == "max" else F.avg_pool2d
    x = Tensor(distinct_values(rng, shape), requires_grad=True)
    report = gradcheck(lambda x: fn(x, kernel, stride, padding), [x])
    assert report.ok, report.explain()


@pytest.mark.parametrize("pool", ["max", "avg"])
@pytest.mark.parametrize("name", list(POOL_CASES))
def test_pool_matches_torch(torch, rng, pool, name):
    shape, kernel, stride, padding = POOL_CASES[name]
    fn = F.max_pool2d if pool == "max" else F.avg_pool2d
    torch_fn = getattr(torch.nn.functional, f"{pool}_pool2d")
    x = Tensor(rng.standard_normal(shape), requires_grad=True)
    y = fn(x, kernel, stride, padding)
    tx = to_torch(torch, x)
    ty = torch_fn(tx, kernel, stride, padding)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_max_pool_ties_go_to_the_first_maximum_in_row_major_order():
    """The rule: each window's whole gradient goes to its first maximum, scanning the
    window row by row (as PyTorch does); tied maxima never share it."""
    x = Tensor(np.array([[[[1.0, 5.0, 5.0, 2.0],
                           [5.0, 5.0, 0.0, 5.0],
                           [3.0, 3.0, 7.0, 7.0],
                           [3.0, 3.0, 7.0, 7.0]]]]), requires_grad=True)
    y = F.max_pool2d(x, 2)
    np.testing.assert_array_equal(y.data, [[[[5.0, 5.0], [3.0, 7.0]]]])
    y.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    np.testing.assert_array_equal(x.grad.data, [[[[0.0, 1.0, 2.0, 0.0],
                                                  [0.0, 0.0, 0.0, 0.0],
                                                  [3.0, 0.0, 4.0, 0.0],
                                                  [0.0, 0.0, 0.0, 0.0]]]])


def test_max_pool_tie_rule_matches_torch(torch, rng):
    """Many ties (small integers) with overlapping, padded windows."""
    x = Tensor(rng.integers(0, 3, (2, 3, 7, 6)).astype(np.float64), requires_grad=True)
    y = F.max_pool2d(x, 3, 2, 1)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    tx = to_torch(torch, x)
    torch.nn.functional.max_pool2d(tx, 3, 2, 1).backward(torch.tensor(g))
    np.testing.assert_array_equal(x.grad.data, tx.grad.numpy())


def test_max_pool_padding_never_wins():
    x = Tensor(-np.ones((1, 1, 3, 3)), requires_grad=True)
    y = F.max_pool2d(x, 2, 2, 1)
    np.testing.assert_array_equal(y.data, -np.ones((1, 1, 2, 2)))


def test_avg_pool_counts_padding_as_zeros(torch):
    x = Tensor(np.ones((1, 1, 3, 3)), requires_grad=True)
    y = F.avg_pool2d(x, 2, 2, 1)
    np.testing.assert_allclose(y.data, [[[[0.25, 0.5], [0.5, 1.0]]]])


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_pool_double_backward(rng, pool):
    fn = F.max_pool2d if pool == "max" else F.avg_pool2d
    x = Tensor(distinct_values(rng, (2, 2, 5, 6)), requires_grad=True)

    def f(x):
        with chainrule.enable_grad():  # gradcheck evaluates f under no_grad
            y = fn(x, 3, 2, 1)
            (gx,) = chainrule.grad((y * y * y).sum(), [x], create_graph=True)
            return (gx * gx).sum()

    report = gradcheck(f, [x], atol=1e-4)
    assert report.ok, report.explain()


def test_pool_keeps_float32(rng):
    x = Tensor(rng.standard_normal((2, 3, 6, 6)).astype(np.float32), requires_grad=True)
    for fn in (F.max_pool2d, F.avg_pool2d):
        x.grad = None
        y = fn(x, 2)
        y.sum().backward()
        assert y.dtype == x.grad.dtype == np.float32


# --------------------------------------------------------------------------- im2col
def naive_im2col(x, kh, kw, stride, pad):
    """The textbook's loops, position by position: the definition being tested."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    rows = []
    for i in range(n):
        for r in range(oh):
            for s in range(ow):
                window = xp[i, :, r * stride:r * stride + kh, s * stride:s * stride + kw]
                rows.append(window.reshape(-1))
    return np.array(rows)


def test_im2col_is_the_textbook_layout(rng):
    x = rng.standard_normal((2, 3, 6, 5))
    col = F.im2col(x, 3, 2, stride=2, padding=1)
    np.testing.assert_array_equal(col.data, naive_im2col(x, 3, 2, 2, 1))


def test_im2col_times_weight_is_conv2d(rng):
    x = rng.standard_normal((2, 3, 6, 5))
    w = rng.standard_normal((4, 3, 3, 3))
    col = F.im2col(x, 3, 3, padding=1)
    y = (col.data @ w.reshape(4, -1).T).reshape(2, 6, 5, 4).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(y, F.conv2d(x, Tensor(w), padding=1).data, atol=1e-12)


@pytest.mark.parametrize("kh, kw, stride, padding, dilation",
                         [(3, 3, 1, 0, 1), (3, 2, 2, 1, 1), (2, 3, (1, 2), (2, 1), 2)])
def test_im2col_col2im_are_adjoint(rng, kh, kw, stride, padding, dilation):
    """⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩: col2im is exactly im2col's transpose."""
    x = rng.standard_normal((2, 3, 7, 6))
    col = F.im2col(x, kh, kw, stride, padding, dilation)
    c = rng.standard_normal(col.shape)
    back = F.col2im(c, x.shape, kh, kw, stride, padding, dilation)
    assert back.shape == x.shape
    np.testing.assert_allclose(np.sum(col.data * c), np.sum(x * back.data), rtol=1e-12)


def test_col2im_of_im2col_counts_the_windows_covering_each_pixel():
    x = np.ones((1, 1, 3, 3))
    counts = F.col2im(F.im2col(x, 2, 2), x.shape, 2, 2).data
    np.testing.assert_array_equal(counts[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


def test_im2col_and_col2im_gradcheck(rng):
    x = Tensor(rng.standard_normal((2, 2, 5, 4)), requires_grad=True)
    report = gradcheck(lambda x: F.im2col(x, 3, 2, 2, 1), [x])
    assert report.ok, report.explain()
    c = Tensor(rng.standard_normal(F.im2col(x, 3, 2, 2, 1).shape), requires_grad=True)
    report = gradcheck(lambda c: F.col2im(c, x.shape, 3, 2, 2, 1), [c])
    assert report.ok, report.explain()


# --------------------------------------------------------------------------- errors
def test_channel_mismatch_names_the_shapes(rng):
    x, w = Tensor(rng.standard_normal((2, 3, 5, 5))), Tensor(rng.standard_normal((4, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"\(2, 3, 5, 5\) has 3 channels.*\(4, 2, 3, 3\)"):
        F.conv2d(x, w)


def test_kernel_larger_than_the_padded_input(rng):
    x, w = Tensor(rng.standard_normal((1, 1, 3, 4))), Tensor(rng.standard_normal((1, 1, 5, 5)))
    with pytest.raises(ValueError, match=r"spans \(5, 5\).*padded input \(3, 4\)"):
        F.conv2d(x, w)
    F.conv2d(x, w, padding=1)  # (5, 6) padded: fits
    with pytest.raises(ValueError, match="dilation"):
        F.conv2d(x, Tensor(np.ones((1, 1, 2, 2))), dilation=3)
    with pytest.raises(ValueError, match="larger than the padded input"):
        F.max_pool2d(x, 4)


def test_groups_must_divide_the_channels(rng):
    x, w = Tensor(rng.standard_normal((1, 3, 5, 5))), Tensor(rng.standard_normal((4, 1, 3, 3)))
    with pytest.raises(ValueError, match=r"groups=2 must divide.*3 channels"):
        F.conv2d(x, w, groups=2)
    with pytest.raises(ValueError, match="groups must be a positive int"):
        F.conv2d(x, w, groups=0)


def test_other_bad_arguments(rng):
    x = Tensor(rng.standard_normal((1, 2, 5, 5)))
    w = Tensor(rng.standard_normal((3, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\).*unsqueeze"):
        F.conv2d(Tensor(rng.standard_normal((2, 5, 5))), w)
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        F.conv2d(x, w, Tensor(np.zeros(2)))
    with pytest.raises(ValueError, match="weight must have shape"):
        F.conv2d(x, Tensor(np.zeros((3, 2, 3))))
    with pytest.raises(ValueError, match="stride must be at least 1"):
        F.conv2d(x, w, stride=0)
    with pytest.raises(TypeError, match="padding must be an int or a pair"):
        F.conv2d(x, w, padding=(1, 1, 1))
    with pytest.raises(ValueError, match="at most half the kernel"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match=r"must have shape \(18, 18\)"):
        F.col2im(np.zeros((18, 17)), (2, 2, 5, 5), 3, 3)
