"""conv2d's uneven padding (a (left, right, top, bottom) 4-tuple, as F.pad takes it),
padding='same' / 'valid', and nn.Conv2d's padding_mode: torch parity (values and
gradients), central differences in float64, and the errors."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule.functional as F
import chainrule.nn as nn
from chainrule import Tensor, gradcheck
from chainrule.ops.conv import conv_padding

# torch warns that it copies the input for an even kernel with 'same': so do we, silently
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")

# (N, C, H, W), out_channels, kernel, stride, padding (left, right, top, bottom), dilation,
# groups
UNEVEN = {
    "right-only": ((2, 3, 5, 6), 4, 3, 1, (0, 2, 1, 1), 1, 1),
    "all-different": ((1, 2, 6, 5), 3, (2, 3), (2, 1), (1, 3, 0, 2), 1, 1),
    "dilated-groups": ((2, 4, 7, 6), 4, 3, 1, (2, 1, 1, 3), (2, 1), 2),
    "even-sides": ((1, 2, 5, 5), 2, 3, 2, (1, 1, 2, 2), 1, 1),  # the symmetric path
}


def torch_conv_uneven(torch, x, w, b, stride, padding, dilation, groups):
    """torch's conv2d takes no 4-tuple: its documented equivalent, pad then convolve."""
    return torch.nn.functional.conv2d(torch.nn.functional.pad(x, padding), w, b,
                                      stride=stride, dilation=dilation, groups=groups)


def make(rng, shape, out_channels, kernel, groups):
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    return (rng.standard_normal(shape), rng.standard_normal((out_channels,
                                                            shape[1] // groups, kh, kw)),
            rng.standard_normal(out_channels))


def compare(torch, rng, arrays, ours, theirs):
    cr = [Tensor(a, requires_grad=True) for a in arrays]
    th = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, ty = ours(*cr), theirs(*th)
    assert y.shape == tuple(ty.shape)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    for c, t in zip(cr, th):
        np.testing.assert_allclose(c.grad.data, t.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", list(UNEVEN))
def test_uneven_padding_matches_torch(torch, rng, name):
    shape, out_channels, kernel, stride, padding, dilation, groups = UNEVEN[name]
    arrays = make(rng, shape, out_channels, kernel, groups)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    compare(torch, rng, arrays, lambda x, w, b: F.conv2d(x, w, b, **kw),
            lambda x, w, b: torch_conv_uneven(torch, x, w, b, **kw))


@pytest.mark.parametrize("name", list(UNEVEN))
def test_uneven_padding_gradcheck(rng, name):
    shape, out_channels, kernel, stride, padding, dilation, groups = UNEVEN[name]
    inputs = [Tensor(a, requires_grad=True) for a in make(rng, shape, out_channels, kernel,
                                                          groups)]
    report = gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation, groups),
                       inputs)
    assert report.ok, report.explain()


# (N, C, H, W), kernel, dilation: odd and even kernels, so the odd place goes right/down
SAME = [((2, 3, 5, 6), 3, 1), ((1, 2, 6, 5), (2, 4), 1), ((2, 2, 7, 7), (4, 3), (2, 3)),
        ((1, 1, 4, 4), 1, 1)]


@pytest.mark.parametrize("shape, kernel, dilation", SAME)
def test_same_padding_keeps_the_size_and_matches_torch(torch, rng, shape, kernel, dilation):
    arrays = make(rng, shape, 3, kernel, 1)
    compare(torch, rng, arrays, lambda x, w, b: F.conv2d(x, w, b, padding="same",
                                                         dilation=dilation),
            lambda x, w, b: torch.nn.functional.conv2d(x, w, b, padding="same",
                                                       dilation=dilation))
    y = F.conv2d(*arrays, padding="same", dilation=dilation)
    assert y.shape[2:] == shape[2:]


def test_same_padding_gradcheck_and_valid(rng, torch):
    x, w, b = (Tensor(a, requires_grad=True) for a in make(rng, (1, 2, 5, 4), 2, (2, 3), 1))
    report = gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding="same", dilation=(2, 1)),
                       [x, w, b])
    assert report.ok, report.explain()
    np.testing.assert_array_equal(F.conv2d(x, w, b, padding="valid").data,
                                  F.conv2d(x, w, b).data)


def test_conv_padding_rule():
    # torch's rule: dilation·(k - 1) places, the odd one on the right / at the bottom
    assert conv_padding("same", (3, 4)) == (1, 2, 1, 1)
    assert conv_padding("same", (2, 2), dilation=(3, 1)) == (0, 1, 1, 2)
    assert conv_padding((1, 2), 3) == (2, 2, 1, 1)
    assert conv_padding(3, 3) == (3, 3, 3, 3)
    assert conv_padding([0, 1, 2, 3], 3) == (0, 1, 2, 3)
    assert conv_padding("valid", 3) == (0, 0, 0, 0)


@pytest.mark.parametrize("padding, stride, error, message", [
    ("same", 2, ValueError, r"padding='same' needs stride 1.*got stride \(2, 2\)"),
    ("full", 1, ValueError, r"'same' or 'valid'; got 'full'"),
    ((1, 2, 3), 1, TypeError, r"a 4-tuple \(left, right, top, bottom\).*got \(1, 2, 3\)"),
    ((1, -1, 0, 0), 1, ValueError, r"at least 0 on every side, got \(1, -1, 0, 0\)"),
    ((1, 1.5, 0, 0), 1, TypeError, "a 4-tuple padding must be ints"),
])
def test_bad_padding(rng, padding, stride, error, message):
    x, w, _ = make(rng, (1, 2, 5, 5), 2, 3, 1)
    with pytest.raises(error, match=message):
        F.conv2d(x, w, padding=padding, stride=stride)
    with pytest.raises(error, match=message.replace("conv2d", "Conv2d")):
        nn.Conv2d(2, 2, 3, stride=stride, padding=padding)


@pytest.mark.parametrize("padding", ["same", (2, 0, 1, 1), (1, 2), "valid"])
@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_conv2d_layer_padding_and_mode_match_torch(torch, rng, padding, mode):
    torch_padding = padding if not isinstance(padding, tuple) or len(padding) == 2 else 0
    layer = nn.Conv2d(2, 3, (3, 2), padding=padding, padding_mode=mode, seed=0).double()
    reference = torch.nn.Conv2d(2, 3, (3, 2), padding=torch_padding,
                                padding_mode=mode).double()
    reference.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in
                               layer.state_dict().items()})
    a = rng.standard_normal((2, 2, 5, 6))
    x = torch.tensor(a)
    if torch_padding == 0 and padding != "valid":  # torch's modules take no 4-tuple
        mode_name = "constant" if mode == "zeros" else mode
        x = torch.nn.functional.pad(x, padding, mode=mode_name)
    np.testing.assert_allclose(layer(a).data, reference(x).detach().numpy(), rtol=1e-10)
    text = repr(layer)
    assert f"padding={padding!r}" in text
    assert ("padding_mode" in text) == (mode != "zeros")


def test_conv2d_layer_keeps_symmetric_padding_as_a_pair_and_rejects_bad_modes():
    assert nn.Conv2d(1, 1, 3, padding=(1, 1, 2, 2)).padding == (2, 1)
    assert nn.Conv2d(1, 1, 3, padding=1).padding == (1, 1)
    with pytest.raises(ValueError, match=r"padding_mode must be one of .*'zeros'.*got 'edge'"):
        nn.Conv2d(1, 1, 3, padding_mode="edge")
