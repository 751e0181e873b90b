"""Module.load_torch_state_dict: a PyTorch state dict loads into the same model built
with chainrule, the weights that chainrule stores transposed (each layer's
``torch_transposed``) turned round on the way in."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import nn

torch = pytest.importorskip("torch")

T, N, D, H = 5, 3, 4, 6


def close(ours, theirs):
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_load_torch_state_dict_into_linear_and_mlp():
    torch.manual_seed(0)
    linear = torch.nn.Linear(4, 3).double()
    ours = nn.Linear(4, 3, dtype=np.float64)
    ours.load_torch_state_dict(linear.state_dict())
    np.testing.assert_array_equal(ours.weight.data, linear.weight.detach().numpy().T)
    x = np.random.default_rng(0).standard_normal((5, 4))
    close(ours(x), linear(torch.tensor(x)))

    class TorchMLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
                                              torch.nn.Linear(8, 3))

        def forward(self, x):
            return self.layers(x)

    theirs = TorchMLP()
    mlp = nn.MLP([4, 8, 3], activations="relu")
    mlp.load_torch_state_dict(theirs.state_dict())  # float32 both
    np.testing.assert_allclose(mlp(x.astype(np.float32)).data,
                               theirs(torch.tensor(x, dtype=torch.float32)).detach().numpy(),
                               atol=1e-6)


def test_a_layer_declares_which_parameters_are_transposed():
    class Scale(nn.Module):  # a layer of one's own: its "kernel" is stored (in, out)
        torch_transposed = ("kern*",)

        def __init__(self):
            super().__init__()
            self.kernel = nn.Parameter(np.zeros((2, 3)))
            self.offset = nn.Parameter(np.zeros((3, 2)))

    model = nn.Sequential(Scale(), Scale())
    kernel, offset = np.arange(6.0).reshape(3, 2), np.arange(6.0).reshape(3, 2)
    model.load_torch_state_dict({f"{i}.{name}": value for i in "01"
                                 for name, value in (("kernel", kernel), ("offset", offset))})
    np.testing.assert_array_equal(model[1].kernel.data, kernel.T)
    np.testing.assert_array_equal(model[1].offset.data, offset)  # not declared: as it is


def test_load_torch_state_dict_checks_everything_first():
    ours = nn.Linear(4, 3)
    before = ours.weight.data.copy()
    state = torch.nn.Linear(4, 3).state_dict()
    with pytest.raises(ValueError, match=r"load_torch_state_dict into Linear failed \(nothing "
                                         r"was loaded\):\n  missing keys .*: bias"):
        ours.load_torch_state_dict({"weight": state["weight"]})
    # a weight in chainrule's (in, out) layout instead of PyTorch's (out, in)
    with pytest.raises(ValueError, match=r"shape mismatch for weight: the state dict has "
                                         r"\(4, 3\), the model has \(3, 4\) in PyTorch's "
                                         r"\(out, in\) layout \(stored transposed here, "
                                         r"\(4, 3\)\)"):
        ours.load_torch_state_dict(state | {"weight": torch.zeros(4, 3)})
    np.testing.assert_array_equal(ours.weight.data, before)
    result = ours.load_torch_state_dict(state | {"extra": torch.zeros(1)}, strict=False)
    assert result.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(ours.weight.data, state["weight"].numpy().T)
    # parameters of a torch module (which require grad) load as well
    ours.load_torch_state_dict(dict(torch.nn.Linear(4, 3).named_parameters()))


def test_load_torch_state_dict_into_a_model_with_an_lstm_and_a_linear():
    class Ours(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(D, H, num_layers=2, dtype=np.float64)
            self.fc = nn.Linear(H, 2, dtype=np.float64)

        def forward(self, x):
            return self.fc(self.lstm(x)[0])

    class Theirs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(D, H, num_layers=2)
            self.fc = torch.nn.Linear(H, 2)

        def forward(self, x):
            return self.fc(self.lstm(x)[0])

    torch.manual_seed(1)
    theirs, ours = Theirs().double(), Ours()
    # NumPy arrays work as well as torch tensors
    ours.load_torch_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((T, N, D))
    close(ours(x), theirs(torch.tensor(x)))


def test_load_torch_state_dict_checks_like_load_state_dict():
    ours = nn.LSTM(D, H, dtype=np.float64)
    before = ours.weight_ih_l0.data.copy()
    state = torch.nn.LSTM(D, H).state_dict()
    with pytest.raises(ValueError, match="missing keys.*bias_hh_l0"):
        ours.load_torch_state_dict({k: v for k, v in state.items() if k != "bias_hh_l0"})
    # a weight given in chainrule's layout instead of PyTorch's
    with pytest.raises(ValueError, match=r"load_torch_state_dict into LSTM failed .*\n.*"
                                         r"weight_hh_l0: the state dict has \(6, 24\), the "
                                         r"model has \(24, 6\) in PyTorch's \(out, in\) "
                                         r"layout \(stored transposed here, \(6, 24\)\)"):
        ours.load_torch_state_dict(state | {"weight_hh_l0": torch.zeros(6, 24)})
    with pytest.raises(ValueError, match=r"weight_ih_l0: the state dict has \(24, 5\)"):
        ours.load_torch_state_dict(torch.nn.LSTM(D + 1, H).state_dict())
    np.testing.assert_array_equal(ours.weight_ih_l0.data, before)  # nothing loaded
    result = ours.load_torch_state_dict(state | {"extra": torch.zeros(1)}, strict=False)
    assert result.unexpected_keys == ["extra"]
    # parameters of torch modules (requiring grad) load as well
    ours.load_torch_state_dict(dict(torch.nn.LSTM(D, H).named_parameters()))


def _torch_convnet(layers):
    """A torch model whose attributes are named as the chainrule model's, applying them
    in order to images (the chainrule convnets' forward)."""
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            for name, layer in layers:
                setattr(self, name, layer)

        def forward(self, x):
            for layer in self.children():
                x = layer(x)
            return x
    return Net()


def _torch_models():
    """The torch twins of TwoLayerNet, SimpleConvNet and DeepConvNet."""
    tnn = torch.nn
    two_layer = _torch_convnet([("fc1", tnn.Linear(784, 50)), ("relu", tnn.ReLU()),
                                ("fc2", tnn.Linear(50, 10))])
    simple = _torch_convnet([("conv1", tnn.Conv2d(1, 30, 5)), ("relu1", tnn.ReLU()),
                             ("pool1", tnn.MaxPool2d(2, 2)), ("flatten", tnn.Flatten()),
                             ("fc1", tnn.Linear(30 * 12 * 12, 100)), ("relu2", tnn.ReLU()),
                             ("fc2", tnn.Linear(100, 10))])
    deep_layers, channels = [], 1
    for index, (out, pad) in enumerate(zip((16, 16, 32, 32, 64, 64), (1, 1, 1, 2, 1, 1)), 1):
        deep_layers += [(f"conv{index}", tnn.Conv2d(channels, out, 3, 1, pad)),
                        (f"relu{index}", tnn.ReLU())]
        if index % 2 == 0:
            deep_layers.append((f"pool{index // 2}", tnn.MaxPool2d(2, 2)))
        channels = out
    deep_layers += [("flatten", tnn.Flatten()), ("fc1", tnn.Linear(64 * 4 * 4, 50)),
                    ("relu7", tnn.ReLU()), ("dropout1", tnn.Dropout(0.5)),
                    ("fc2", tnn.Linear(50, 10)), ("dropout2", tnn.Dropout(0.5))]
    return {"TwoLayerNet": (two_layer, nn.TwoLayerNet(784, 50, 10), (784,)),
            "SimpleConvNet": (simple, nn.SimpleConvNet(), (1, 28, 28)),
            "DeepConvNet": (_torch_convnet(deep_layers), nn.DeepConvNet(), (1, 28, 28))}


@pytest.mark.parametrize("name", ["TwoLayerNet", "SimpleConvNet", "DeepConvNet"])
def test_load_torch_state_dict_into_the_textbook_models(name):
    """A state dict of the torch model with the same layer names loads into chainrule's
    model (Linear weights transposed, convolution weights as they are) and both compute
    the same outputs."""
    torch.manual_seed(0)
    theirs, ours, shape = _torch_models()[name]
    theirs = theirs.double().eval()
    ours = ours.double().eval()
    result = ours.load_torch_state_dict(theirs.state_dict())
    assert not result.missing_keys and not result.unexpected_keys
    fc1 = dict(theirs.named_parameters())["fc1.weight"]
    np.testing.assert_array_equal(ours.fc1.weight.data, fc1.detach().numpy().T)
    x = np.random.default_rng(1).random((3, *shape))
    close(ours(x), theirs(torch.tensor(x)))
