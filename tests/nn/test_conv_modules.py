"""Convolution layers and the textbook's ConvNets: construction and initialisation,
gradchecks in float64, parity with torch.nn (Conv2d, pooling, BatchNorm2d, the whole
SimpleConvNet), output shapes, flat input, and a short training run."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
import chainrule.functional as F
from chainrule import Tensor, gradcheck, nn


def torch_conv_from(torch, layer: nn.Conv2d):
    t = torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                        layer.stride, layer.padding, layer.dilation, layer.groups,
                        bias=layer.bias is not None, dtype=torch.float64)
    with torch.no_grad():
        t.weight.copy_(torch.tensor(layer.weight.data))
        if layer.bias is not None:
            t.bias.copy_(torch.tensor(layer.bias.data))
    return t


# --------------------------------------------------------------------------- Conv2d
def test_conv2d_layer_shapes_and_defaults():
    layer = nn.Conv2d(4, 6, (3, 2), stride=2, padding=1, groups=2, seed=0)
    assert layer.weight.shape == (6, 2, 3, 2) and layer.bias.shape == (6,)
    assert layer.weight.dtype == np.float32 and not layer.bias.data.any()
    assert layer.kernel_size == (3, 2) and layer.stride == (2, 2) and layer.padding == (1, 1)
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    assert "groups=2" in repr(layer)
    assert nn.Conv2d(1, 2, 3, bias=False).bias is None
    assert nn.Convolution is nn.Conv2d


def test_conv2d_he_initialisation_uses_the_fan_in_of_one_group():
    layer = nn.Conv2d(64, 128, 3, groups=4, seed=0)
    fan_in = 64 // 4 * 3 * 3
    assert layer.weight.data.std() == pytest.approx(np.sqrt(2.0 / fan_in), rel=0.05)
    again = nn.Conv2d(64, 128, 3, groups=4, seed=0)
    np.testing.assert_array_equal(layer.weight.data, again.weight.data)
    xavier = nn.Conv2d(8, 8, 3, init="xavier", seed=0)
    assert xavier.weight.data.std() == pytest.approx(np.sqrt(2.0 / (72 + 72)), rel=0.1)


def test_conv2d_layer_errors():
    with pytest.raises(ValueError, match="groups=3 must divide both in_channels=4"):
        nn.Conv2d(4, 6, 3, groups=3)
    with pytest.raises(ValueError, match="in_channels must be a positive int"):
        nn.Conv2d(0, 6, 3)
    with pytest.raises(ValueError, match="kernel_size must be at least 1"):
        nn.Conv2d(1, 1, 0)
    with pytest.raises(ValueError, match="input of shape .* has 2 channels"):
        nn.Conv2d(3, 4, 3)(np.zeros((1, 2, 5, 5), dtype=np.float32))


def test_conv2d_layer_gradcheck(rng):
    layer = nn.Conv2d(4, 2, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2), groups=2,
                      seed=0).double()
    x = Tensor(rng.standard_normal((2, 4, 6, 7)), requires_grad=True)
    report = gradcheck(lambda x, w, b: layer(x), [x, layer.weight, layer.bias])
    assert report.ok, report.explain()


def test_conv2d_layer_matches_torch(torch, rng):
    layer = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, seed=0).double()
    theirs = torch_conv_from(torch, layer)
    x = rng.standard_normal((2, 4, 7, 5))
    y = layer(Tensor(x))
    ty = theirs(torch.tensor(x))
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(layer.weight.grad.data, theirs.weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(layer.bias.grad.data, theirs.bias.grad.numpy(), rtol=1e-10)


def test_conv2d_layer_converts_numpy_input_to_its_dtype(rng):
    layer = nn.Conv2d(1, 2, 3, seed=0)
    y = layer(rng.standard_normal((2, 1, 5, 5)))  # float64 NumPy batch
    assert y.dtype == np.float32


# --------------------------------------------------------------------------- pooling layers
@pytest.mark.parametrize("cls, torch_name", [(nn.MaxPool2d, "MaxPool2d"),
                                             (nn.AvgPool2d, "AvgPool2d")])
def test_pool_layers_match_torch(torch, rng, cls, torch_name):
    for args in [(2,), (3, 2, 1), ((2, 3), (1, 2), (1, 1))]:
        layer, theirs = cls(*args), getattr(torch.nn, torch_name)(*args)
        x = Tensor(rng.standard_normal((2, 3, 7, 8)), requires_grad=True)
        tx = torch.tensor(x.data, requires_grad=True)
        y, ty = layer(x), theirs(tx)
        np.testing.assert_allclose(y.data, ty.detach().numpy(), atol=1e-12)
        g = rng.standard_normal(y.shape)
        y.backward(g)
        ty.backward(torch.tensor(g))
        np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), atol=1e-12)


def test_pool_layer_defaults_and_gradcheck(rng):
    pool = nn.MaxPool2d(2)
    assert pool.stride == (2, 2) and pool.padding == (0, 0) and nn.Pooling is nn.MaxPool2d
    assert pool.num_parameters() == 0
    x = Tensor(rng.permutation(2 * 2 * 5 * 6).reshape(2, 2, 5, 6) * 0.1, requires_grad=True)
    for layer in (nn.MaxPool2d(3, 2, 1), nn.AvgPool2d((2, 3), 1)):
        report = gradcheck(layer, [x])
        assert report.ok, report.explain()


# --------------------------------------------------------------------------- with BatchNorm2d
def test_conv_batchnorm_relu_block_matches_torch(torch, rng):
    """Conv2d → BatchNorm2d → ReLU → MaxPool2d, training mode, forward and backward."""
    conv = nn.Conv2d(3, 4, 3, padding=1, seed=0).double()
    bn = nn.BatchNorm2d(4).double()
    block = nn.Sequential(conv, bn, nn.ReLU(), nn.MaxPool2d(2))
    t_conv, t_bn = torch_conv_from(torch, conv), torch.nn.BatchNorm2d(4, dtype=torch.float64)
    theirs = torch.nn.Sequential(t_conv, t_bn, torch.nn.ReLU(), torch.nn.MaxPool2d(2))
    x = rng.standard_normal((3, 3, 6, 5))
    tx = torch.tensor(x, requires_grad=True)
    cx = Tensor(x, requires_grad=True)
    y, ty = block(cx), theirs(tx)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-7, atol=1e-9)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(cx.grad.data, tx.grad.numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(conv.weight.grad.data, t_conv.weight.grad.numpy(), rtol=1e-6,
                               atol=1e-9)
    np.testing.assert_allclose(bn.weight.grad.data, t_bn.weight.grad.numpy(), rtol=1e-6,
                               atol=1e-9)
    np.testing.assert_allclose(bn.running_var.data, t_bn.running_var.numpy(), rtol=1e-7)


# --------------------------------------------------------------------------- SimpleConvNet
def test_simple_convnet_is_the_textbooks():
    model = nn.SimpleConvNet(seed=0)
    shapes = {name: p.shape for name, p in model.named_parameters()}
    assert shapes == {"conv1.weight": (30, 1, 5, 5), "conv1.bias": (30,),
                      "fc1.weight": (4320, 100), "fc1.bias": (100,),
                      "fc2.weight": (100, 10), "fc2.bias": (10,)}
    assert all(p.dtype == np.float32 for p in model.parameters())


def test_simple_convnet_accepts_flat_and_image_input(rng):
    model = nn.SimpleConvNet(seed=0)
    x = rng.random((3, 784), dtype=np.float32)
    flat = model(x)
    assert flat.shape == (3, 10)
    np.testing.assert_array_equal(flat.data, model(x.reshape(3, 1, 28, 28)).data)
    with pytest.raises(ValueError, match=r"expects images of shape \(N, 1, 28, 28\) or "
                                         r"flat input \(N, 784\), got \(3, 783\)"):
        model(x[:, :783])


def test_simple_convnet_other_geometries(rng):
    model = nn.SimpleConvNet(input_dim=(3, 16, 12), seed=0, output_size=4,
                             conv_params={"filter_num": 5, "filter_size": 3, "pad": 1})
    assert model.fc1.weight.shape == (5 * 8 * 6, 100)
    assert model(rng.random((2, 3 * 16 * 12))).shape == (2, 4)
    with pytest.raises(ValueError, match="unknown conv_params"):
        nn.SimpleConvNet(conv_params={"filters": 3})
    with pytest.raises(ValueError, match="larger than the padded input"):
        nn.SimpleConvNet(input_dim=(1, 4, 4))


def test_simple_convnet_seed_and_textbook_init():
    a, b = nn.SimpleConvNet(seed=3), nn.SimpleConvNet(seed=3)
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    small = nn.SimpleConvNet(seed=3, weight_init_std=0.01)
    assert small.fc1.weight.data.std() == pytest.approx(0.01, rel=0.05)


def test_simple_convnet_gradcheck(rng):
    model = nn.SimpleConvNet(input_dim=(2, 7, 6), hidden_size=4, output_size=3, seed=0,
                             conv_params={"filter_num": 3, "filter_size": 3, "pad": 1,
                                          "stride": 2}).double()
    x = rng.standard_normal((2, 2 * 7 * 6))
    t = np.array([0, 2])
    params = list(model.parameters())
    report = gradcheck(lambda *_: F.cross_entropy(model(x), t), params)
    assert report.ok, report.explain()


def test_simple_convnet_matches_torch(torch, rng):
    model = nn.SimpleConvNet(seed=0).double()
    tnn = torch.nn
    theirs = tnn.Sequential(torch_conv_from(torch, model.conv1), tnn.ReLU(), tnn.MaxPool2d(2),
                            tnn.Flatten(), tnn.Linear(4320, 100), tnn.ReLU(),
                            tnn.Linear(100, 10)).double()
    with torch.no_grad():
        for ours, index in ((model.fc1, 4), (model.fc2, 6)):
            theirs[index].weight.copy_(torch.tensor(ours.weight.data.T))  # (out, in) there
            theirs[index].bias.copy_(torch.tensor(ours.bias.data))
    x = rng.random((4, 784))
    t = np.array([1, 7, 3, 3])
    loss = F.cross_entropy(model(x), t)
    t_loss = torch.nn.functional.cross_entropy(theirs(torch.tensor(x).reshape(4, 1, 28, 28)),
                                               torch.tensor(t))
    assert loss.item() == pytest.approx(t_loss.item(), rel=1e-10)
    loss.backward()
    t_loss.backward()
    np.testing.assert_allclose(model.conv1.weight.grad.data, theirs[0].weight.grad.numpy(),
                               rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(model.fc1.weight.grad.data, theirs[4].weight.grad.numpy().T,
                               rtol=1e-8, atol=1e-12)


def learnable_images(rng, count):
    """Three classes of 28×28 images: a bright 6×6 square at a class-dependent place,
    on noise."""
    labels = rng.integers(0, 3, count)
    images = rng.random((count, 1, 28, 28)).astype(np.float32) * 0.5
    for label, (r, c) in enumerate([(3, 3), (3, 19), (19, 11)]):
        images[labels == label, 0, r:r + 6, c:c + 6] += 1.0
    return images, labels


def test_simple_convnet_learns(rng):
    """Plain SGD on 200 images: the loss drops within a few steps."""
    x, t = learnable_images(rng, 200)
    model = nn.SimpleConvNet(output_size=3, seed=0)
    params = list(model.parameters())
    losses = []
    for _ in range(5):
        loss = F.cross_entropy(model(x), t)
        model.zero_grad()
        loss.backward()
        for p in params:
            p.data -= 0.01 * p.grad.data
        losses.append(loss.item())
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.3 * losses[0], losses
    with chainrule.no_grad():
        accuracy = np.mean(model(x).data.argmax(axis=1) == t)
    assert accuracy > 0.9


# --------------------------------------------------------------------------- DeepConvNet
def test_deep_convnet_layers_and_shapes(rng):
    model = nn.DeepConvNet(seed=0)
    convs = [model.conv1, model.conv2, model.conv3, model.conv4, model.conv5, model.conv6]
    assert [c.out_channels for c in convs] == [16, 16, 32, 32, 64, 64]
    assert [c.padding[0] for c in convs] == [1, 1, 1, 2, 1, 1]
    assert model.fc1.weight.shape == (64 * 4 * 4, 50) and model.fc2.weight.shape == (50, 10)
    names = [name for name, _ in model.named_children()]
    assert names[:5] == ["conv1", "relu1", "conv2", "pool1", "relu2"]  # pool first: equal
    assert names[-6:] == ["flatten", "fc1", "relu7", "dropout1", "fc2", "dropout2"]
    assert model(rng.random((2, 784), dtype=np.float32)).shape == (2, 10)
    # He initialisation: std √(2 / fan_in), fan_in = 16·3·3 for conv3
    assert model.conv3.weight.data.std() == pytest.approx(np.sqrt(2 / 144), rel=0.1)


def test_pool_before_relu_is_the_textbook_order_exactly(rng):
    """The models max-pool before the ReLU: relu(max(x)) = max(relu(x)), with the same
    gradients, bit for bit (including windows with no positive value and ties at zero);
    the whole DeepConvNet agrees with the textbook's order up to rounding (the layers
    after it see the same values in another memory order)."""
    x = rng.standard_normal((3, 4, 8, 6)).astype(np.float32)
    x[0, 0, :4, :4] = -1.0  # windows whose values are all negative, and ties
    x[1, 1, :2, :2] = 0.0
    g = rng.standard_normal((3, 4, 4, 3)).astype(np.float32)
    results = []
    for textbook in (False, True):
        h = chainrule.Tensor(x, requires_grad=True)
        y = F.max_pool2d(F.relu(h), 2) if textbook else F.relu(F.max_pool2d(h, 2))
        y.backward(g)
        results.append((y.data, h.grad.data))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])

    model = nn.DeepConvNet(seed=0)
    model.eval()
    images = rng.random((2, 1, 28, 28), dtype=np.float32)
    h = chainrule.Tensor(images)
    for index in range(1, 7):
        h = getattr(model, f"relu{index}")(getattr(model, f"conv{index}")(h))
        if index % 2 == 0:
            h = getattr(model, f"pool{index // 2}")(h)
    textbook = model.fc2(model.relu7(model.fc1(model.flatten(h))))
    np.testing.assert_allclose(model(images).data, textbook.data, rtol=1e-5, atol=1e-5)


def test_deep_convnet_dropout_only_in_training(rng):
    model = nn.DeepConvNet(seed=0)
    x = rng.random((2, 1, 28, 28), dtype=np.float32)
    model.eval()
    np.testing.assert_array_equal(model(x).data, model(x).data)
    model.train()
    assert not np.array_equal(model(x).data, model(x).data)


def test_deep_convnet_other_input_and_backward(rng):
    model = nn.DeepConvNet(input_dim=(3, 20, 12), output_size=5, seed=1)
    assert model.fc1.weight.shape == (64 * 3 * 2, 50)
    loss = F.cross_entropy(model(rng.random((2, 3 * 20 * 12))), np.array([0, 4]))
    loss.backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())
