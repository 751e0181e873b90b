"""conv_transpose2d and nn.ConvTranspose2d: torch parity (values, gradients, double
backward) over stride, padding, output_padding, groups and dilation; central
differences in float64 with odd sizes; the adjoint identity with conv2d; the layer's
torch state dict, output_size, and the errors."""

from __future__ import annotations

import numpy as np
import pytest
from conv_checks import double_backward

import chainrule.functional as F
import chainrule.nn as nn
from chainrule import Tensor, gradcheck

# (N, C_in, H, W), C_out, kernel, stride, padding, output_padding, groups, dilation, bias
CASES = {
    "plain": ((2, 3, 4, 5), 2, 3, 1, 0, 0, 1, 1, True),
    "stride2": ((2, 2, 3, 4), 3, 3, 2, 1, 1, 1, 1, True),
    "rect": ((1, 2, 4, 3), 2, (2, 3), (2, 1), (1, 0), (1, 0), 1, 1, False),
    "groups": ((2, 4, 3, 3), 6, 3, 2, 0, 0, 2, 1, True),
    "dilation": ((1, 2, 5, 4), 3, 3, 1, 2, 0, 1, 2, True),
    "op>=stride": ((1, 2, 3, 4), 2, 2, 1, 0, 1, 1, 2, True),  # output_padding < dilation
    "everything": ((2, 4, 5, 4), 4, (3, 2), (3, 2), (2, 1), (2, 1), 2, (1, 2), True),
}


def inputs(rng, case, dtype=np.float64):
    shape, c_out, kernel, stride, padding, output_padding, groups, dilation, bias = case
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = Tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)
    w = Tensor(rng.standard_normal((shape[1], c_out // groups, kh, kw)).astype(dtype),
               requires_grad=True)
    b = Tensor(rng.standard_normal(c_out).astype(dtype), requires_grad=True) if bias else None
    return x, w, b, dict(stride=stride, padding=padding, output_padding=output_padding,
                         groups=groups, dilation=dilation)


def leaves(torch, *tensors):
    return [None if t is None else torch.tensor(t.data, requires_grad=True) for t in tensors]


@pytest.mark.parametrize("name", list(CASES))
def test_conv_transpose2d_matches_torch(torch, rng, name):
    x, w, b, kw = inputs(rng, CASES[name])
    y = F.conv_transpose2d(x, w, b, **kw)
    tx, tw, tb = leaves(torch, x, w, b)
    ty = torch.nn.functional.conv_transpose2d(tx, tw, tb, **kw)
    assert y.shape == tuple(ty.shape)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    for ours, theirs in ((x, tx), (w, tw), (b, tb)):
        if ours is not None:
            np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-10,
                                       atol=1e-12)


@pytest.mark.parametrize("name", list(CASES))
def test_conv_transpose2d_gradcheck(rng, name):
    x, w, b, kw = inputs(rng, CASES[name])
    leaves_ = [x, w] + ([b] if b is not None else [])
    report = gradcheck(lambda x, w, b=None: F.conv_transpose2d(x, w, b, **kw), leaves_)
    assert report.ok, report.explain()


def test_conv_transpose2d_is_the_adjoint_of_conv2d(rng):
    """⟨conv2d(u, W), v⟩ = ⟨u, conv_transpose2d(v, W)⟩ for the same settings."""
    u = rng.standard_normal((2, 3, 7, 6))
    w = rng.standard_normal((4, 3, 3, 2))
    settings = dict(stride=(2, 1), padding=(1, 1), dilation=(1, 2))
    y = F.conv2d(u, w, **settings)
    v = rng.standard_normal(y.shape)
    back = F.conv_transpose2d(v, w, output_padding=(0, 0), **settings)
    assert back.shape == u.shape
    np.testing.assert_allclose(np.sum(y.data * v), np.sum(u * back.data), rtol=1e-12)




def test_conv_transpose2d_double_backward(torch, rng):
    x, w, b, kw = inputs(rng, CASES["everything"])
    report = gradcheck(double_backward(F.conv_transpose2d, kw), [x, w, b], atol=1e-4)
    assert report.ok, report.explain()
    for t in (x, w, b):
        t.grad = None
    double_backward(F.conv_transpose2d, kw)(x, w, b).backward()
    tx, tw, tb = leaves(torch, x, w, b)
    ty = torch.nn.functional.conv_transpose2d(tx, tw, tb, **kw)
    gx, gw = torch.autograd.grad((ty * ty).sum(), [tx, tw], create_graph=True)
    ((gx * gx).sum() + (gw * gw * gw).sum()).backward()
    for ours, theirs in ((x, tx), (w, tw), (b, tb)):
        np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-9)


def test_conv_transpose2d_float32(torch, rng):
    x, w, b, kw = inputs(rng, CASES["stride2"], np.float32)
    y = F.conv_transpose2d(x, w, b, **kw)
    y.sum().backward()
    assert y.dtype == x.grad.dtype == w.grad.dtype == b.grad.dtype == np.float32
    ty = torch.nn.functional.conv_transpose2d(*leaves(torch, x, w, b), **kw)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_conv_transpose2d_layer_loads_torch_weights_and_matches(torch, rng):
    reference = torch.nn.ConvTranspose2d(4, 6, (3, 2), stride=2, padding=1,
                                         output_padding=1, groups=2, dilation=(1, 2)).double()
    layer = nn.ConvTranspose2d(4, 6, (3, 2), stride=2, padding=1, output_padding=1,
                               groups=2, dilation=(1, 2)).double()
    assert layer.weight.shape == tuple(reference.weight.shape) == (4, 3, 3, 2)
    result = layer.load_torch_state_dict(reference.state_dict())
    assert not result.missing_keys and not result.unexpected_keys
    a = rng.standard_normal((2, 4, 5, 3))
    expected = reference(torch.tensor(a)).detach().numpy()
    np.testing.assert_allclose(layer(a).data, expected, rtol=1e-10, atol=1e-12)
    text = repr(layer)
    assert "output_padding=(1, 1)" in text and "groups=2" in text


def test_conv_transpose2d_layer_output_size(torch, rng):
    layer = nn.ConvTranspose2d(2, 3, 3, stride=2, seed=0)
    x = rng.standard_normal((1, 2, 3, 4)).astype(np.float32)
    assert layer(x).shape == (1, 3, 7, 9)
    assert layer(x, output_size=(8, 10)).shape == (1, 3, 8, 10)
    assert layer(x, output_size=(1, 3, 8, 9)).shape == (1, 3, 8, 9)
    reference = torch.nn.ConvTranspose2d(2, 3, 3, stride=2)
    reference.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in
                                layer.state_dict().items()})
    expected = reference(torch.tensor(x), output_size=(8, 10)).detach().numpy()
    np.testing.assert_allclose(layer(x, output_size=(8, 10)).data, expected, atol=1e-5)
    with pytest.raises(ValueError, match=r"output size of \(9, 9\).*\(7, 9\) to \(8, 10\)"):
        layer(x, output_size=(9, 9))


def test_conv_transpose2d_layer_defaults_and_init():
    layer = nn.ConvTranspose2d(8, 16, 3, seed=0)
    assert layer.weight.dtype == np.float32 and layer.bias.shape == (16,)
    assert not np.any(layer.bias.data)
    # He init with PyTorch's fan-in for this layout: weight.shape[1]·kh·kw = 16·9
    assert abs(layer.weight.data.std() - np.sqrt(2 / (16 * 9))) < 0.02
    assert nn.ConvTranspose2d(1, 1, 2, bias=False).bias is None


@pytest.mark.parametrize("kwargs, message", [
    (dict(output_padding=2, stride=2), r"output_padding \(2, 2\) must be smaller than the "
                                       r"stride \(2, 2\) or the dilation \(1, 1\)"),
    (dict(padding=3), r"output would have size \(-1, 0\)"),
    (dict(groups=3), r"groups=3 must divide the weight's 4 input channels"),
    (dict(groups=0), "groups must be a positive int"),
    (dict(stride=0), "stride must be at least 1"),
    (dict(output_padding=-1), "output_padding must be at least 0"),
])
def test_conv_transpose2d_bad_arguments(rng, kwargs, message):
    x = rng.standard_normal((1, 4, 3, 4))
    w = rng.standard_normal((4, 3, 3, 3))
    with pytest.raises((TypeError, ValueError), match=message):
        F.conv_transpose2d(x, w, **kwargs)


def test_conv_transpose2d_shape_errors(rng):
    w = rng.standard_normal((4, 3, 3, 3))
    with pytest.raises(ValueError, match=r"has 2 channels, but the weight of shape "
                                         r"\(4, 3, 3, 3\) expects 4"):
        F.conv_transpose2d(rng.standard_normal((1, 2, 3, 3)), w)
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        F.conv_transpose2d(rng.standard_normal((1, 4, 3, 3)), w, np.zeros(4))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        F.conv_transpose2d(rng.standard_normal((4, 3, 3)), w)
    with pytest.raises(ValueError, match="groups=2 must divide both"):
        nn.ConvTranspose2d(4, 3, 3, groups=2)
    with pytest.raises(ValueError, match="output_padding"):
        nn.ConvTranspose2d(4, 3, 3, output_padding=1)


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d"])
def test_dilated_windows_that_tile_leave_no_gaps(torch, rng, op):
    """Stride = dilated span: the windows tile the image, but the gaps between dilated
    taps get no gradient and must be zeros (they once were uninitialised memory)."""
    kw = dict(stride=(1, 3), dilation=(1, 2))
    if op == "conv2d":
        a, w = rng.standard_normal((1, 2, 4, 9)), rng.standard_normal((3, 2, 1, 2))
        x = Tensor(a, requires_grad=True)
        F.conv2d(x, w, **kw).sum().backward()
        tx = torch.tensor(a, requires_grad=True)
        torch.nn.functional.conv2d(tx, torch.tensor(w), **kw).sum().backward()
        np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-12)
    else:
        a, w = rng.standard_normal((1, 2, 4, 3)), rng.standard_normal((2, 3, 1, 2))
        expected = torch.nn.functional.conv_transpose2d(torch.tensor(a), torch.tensor(w),
                                                        **kw).numpy()
        np.testing.assert_allclose(F.conv_transpose2d(a, w, **kw).data, expected,
                                   rtol=1e-12)
