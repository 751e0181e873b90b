"""Module.load_torch_state_dict: a PyTorch state dict loads into the same model built
with chainrule, the weights that chainrule stores transposed (each layer's
``torch_transposed``) turned round on the way in."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import nn

torch = pytest.importorskip("torch")

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
