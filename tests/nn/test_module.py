"""Module: registration, names, buffers, modes, state dicts, dtype conversion, repr."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule.functional as F
from chainrule import Tensor, nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4, seed=0)
        self.bn = nn.BatchNorm1d(4)
        self.scale = nn.Parameter([2.0])

    def forward(self, x):
        return self.bn(self.fc(x)) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.layers = nn.ModuleList([nn.Linear(4, 4, seed=1), nn.Linear(4, 2, seed=2)])
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.5, seed=0))
        self.register_buffer("steps", np.zeros(()))

    def forward(self, x):
        x = self.block(x)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


# pre-order, as in PyTorch: a module's own parameters before its submodules'
NAMES = ["block.scale", "block.fc.weight", "block.fc.bias", "block.bn.weight",
         "block.bn.bias", "layers.0.weight", "layers.0.bias", "layers.1.weight",
         "layers.1.bias"]


def test_registration_and_dotted_names():
    net = Net()
    assert [name for name, _ in net.named_parameters()] == NAMES
    assert len(list(net.parameters())) == len(NAMES)
    assert [name for name, _ in net.named_buffers()] == [
        "steps", "block.bn.running_mean", "block.bn.running_var",
        "block.bn.num_batches_tracked"]
    assert len(list(net.buffers())) == 4
    assert [name for name, _ in net.named_children()] == ["block", "layers", "head"]
    assert list(net.children())[0] is net.block
    names = [name for name, _ in net.named_modules()]
    assert names[:3] == ["", "block", "block.fc"]
    assert "head.1" in names and len(list(net.modules())) == len(names)
    assert net.num_parameters() == sum(p.size for p in net.parameters()) == 12 + 4 + 8 + 1 + 20 + 10


def test_parameter_names_dtypes_and_grad():
    p = nn.Parameter([1.0, 2.0])
    assert p.dtype == np.float32 and p.requires_grad and p.is_leaf
    assert nn.Parameter(np.zeros(2)).dtype == np.float64  # NumPy float dtype kept
    assert nn.Parameter(np.zeros(2, dtype=np.int64)).dtype == np.float32
    array = np.ones(3, dtype=np.float32)
    assert nn.Parameter(array).data is array  # shared, as in PyTorch
    net = Net()
    assert net.block.fc.weight.name == "weight" and net.block.scale.name == "scale"
    named = nn.Parameter([1.0], name="mine")
    net.extra = named
    assert named.name == "mine"
    assert "Parameter containing" in repr(p)


def test_reassignment_and_deletion():
    net = Net()
    with pytest.raises(TypeError, match="parameter 'scale'"):
        net.block.scale = np.ones(1)
    net.block.scale = None  # None is allowed: the slot stays, without a value
    assert "block.scale" not in dict(net.named_parameters())
    with pytest.raises(TypeError, match="submodule 'fc'"):
        net.block.fc = 3
    net.block.fc = nn.Identity()  # a module replaces a module
    assert "block.fc.weight" not in dict(net.named_parameters())
    del net.layers
    assert not hasattr(net, "layers")
    net.block.bn.running_mean = np.full(4, 5.0, dtype=np.float32)  # buffers accept arrays
    assert isinstance(net.block.bn.running_mean, Tensor)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        net.nope  # noqa: B018


def test_assigning_before_init_is_explained():
    class Bad(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Bad()


def test_shared_parameter_listed_once():
    a = nn.Linear(2, 2, seed=0)
    seq = nn.Sequential(a, nn.ReLU(), a)
    assert len(list(seq.parameters())) == 2
    assert len(list(seq.modules())) == 3  # seq, a, relu
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_train_eval_switches_dropout_and_batchnorm_not_gradients():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    x = np.random.default_rng(0).standard_normal((5, 3))
    out = net(x)
    assert out.requires_grad  # gradients are still recorded in eval mode
    np.testing.assert_array_equal(net.block.bn.running_mean.data, 0)  # not updated
    drop = nn.Dropout(0.5, seed=0).eval()
    np.testing.assert_array_equal(drop(x).data, x)
    net.train()
    assert all(m.training for m in net.modules())
    net(x)
    assert np.any(net.block.bn.running_mean.data != 0)


def test_dropout_statistics_and_seed():
    x = np.ones((200, 50), dtype=np.float32)
    y = nn.Dropout(0.3, seed=1)(x).data
    assert y.dtype == np.float32
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.7)}
    assert abs((y == 0).mean() - 0.3) < 0.02
    np.testing.assert_array_equal(y, nn.Dropout(0.3, seed=1)(x).data)
    maps = nn.Dropout2d(0.5, seed=0)(np.ones((4, 6, 3, 3))).data
    per_channel = maps.reshape(4, 6, 9)
    assert np.all(per_channel.min(-1) == per_channel.max(-1))  # whole channels
    assert 0 < (per_channel[..., 0] == 0).mean() < 1
    with pytest.raises(ValueError, match="\\[0, 1\\)"):
        nn.Dropout(1.0)


def test_zero_grad():
    net = Net()
    net(np.ones((4, 3))).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_state_dict_copies_and_round_trip():
    net = Net()
    net(np.random.default_rng(0).standard_normal((6, 3)))  # move the running stats
    sd = net.state_dict()
    assert list(sd) == ["steps", "block.scale", "block.fc.weight", "block.fc.bias",
                        "block.bn.weight", "block.bn.bias", "block.bn.running_mean",
                        "block.bn.running_var", "block.bn.num_batches_tracked",
                        "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    sd["block.fc.weight"][...] = 0  # a copy: the model is untouched
    assert np.any(net.block.fc.weight.data != 0)
    other = Net()
    weight_before = other.block.fc.weight
    result = other.load_state_dict(net.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert other.block.fc.weight is weight_before  # loaded in place
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[key], value)
    x = np.ones((2, 3))
    np.testing.assert_array_equal(net.eval()(x).data, other.eval()(x).data)


def test_load_state_dict_reports_every_problem_at_once():
    net = Net()
    sd = net.state_dict()
    del sd["block.fc.bias"]
    sd["block.extra"] = np.zeros(2)
    sd["layers.1.weight"] = np.zeros((5, 2))
    before = net.state_dict()
    with pytest.raises(ValueError) as info:
        net.load_state_dict(sd)
    message = str(info.value)
    assert "missing keys" in message and "block.fc.bias" in message
    assert "unexpected keys" in message and "block.extra" in message
    assert "layers.1.weight" in message and "(5, 2)" in message and "(4, 2)" in message
    for key, value in before.items():  # nothing was loaded
        np.testing.assert_array_equal(net.state_dict()[key], value)
    # non-strict: missing/unexpected are returned, a shape mismatch is still an error
    with pytest.raises(ValueError, match="shape mismatch"):
        net.load_state_dict(sd, strict=False)
    sd["layers.1.weight"] = before["layers.1.weight"]
    result = net.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["block.fc.bias"]
    assert result.unexpected_keys == ["block.extra"]


def test_to_double_float_in_place():
    net = Net()
    weight = net.block.fc.weight
    net(np.ones((3, 3))).sum().backward()
    assert net.double() is net
    assert net.block.fc.weight is weight
    assert all(t.dtype == np.float64 for t in net.parameters())
    # floating buffers convert; BatchNorm's batch counter stays int64, as in PyTorch
    assert all(t.dtype == np.float64 for name, t in net.named_buffers()
               if not name.endswith("num_batches_tracked"))
    assert net.block.bn.num_batches_tracked.dtype == np.int64
    assert weight.grad.dtype == np.float64
    assert net(np.ones((3, 3))).dtype == np.float64
    net.float()
    assert all(t.dtype == np.float32 for t in net.parameters())
    with pytest.raises(ValueError, match="floating-point"):
        net.to("int32")


def test_inputs_tensors_arrays_and_lists():
    layer = nn.Linear(2, 3, seed=0)
    as_array = layer(np.ones((4, 2)))  # float64 NumPy data computes in float32
    assert as_array.dtype == np.float32
    assert layer([[1.0, 1.0]]).shape == (1, 3)
    assert layer(Tensor(np.ones((4, 2), dtype=np.int64))).dtype == np.float32
    with pytest.raises(TypeError, match="float64.*float32"):
        layer(Tensor(np.ones((4, 2))))
    with pytest.raises(ValueError, match="2 features"):
        layer(np.ones((4, 3)))
    assert nn.ReLU()(np.array([-1.0, 2.0])).tolist() == [0.0, 2.0]
    assert nn.CrossEntropyLoss()(layer(np.ones((2, 2))), [0, 2]).shape == ()


def test_sequential_and_module_list():
    seq = nn.Sequential(nn.Linear(3, 4, seed=0), nn.ReLU())
    seq.append(nn.Linear(4, 2, seed=1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear) and isinstance(seq[1], nn.ReLU)
    assert [type(m) for m in seq] == [nn.Linear, nn.ReLU, nn.Linear]
    assert isinstance(seq[1:], nn.Sequential) and len(seq[1:]) == 2
    assert seq(np.ones((5, 3))).shape == (5, 2)
    assert "2.weight" in dict(seq.named_parameters())
    with pytest.raises(IndexError, match="length 3"):
        seq[3]
    with pytest.raises(TypeError, match="nn.Module"):
        seq.append(F.relu)
    ml = nn.ModuleList([nn.Linear(2, 2)]).extend([nn.Tanh()])
    assert len(ml) == 2 and [n for n, _ in ml.named_parameters()] == ["0.weight", "0.bias"]


def test_repr_tree_with_shapes_and_counts():
    text = repr(nn.TwoLayerNet(784, 50, 10, seed=0))
    assert text.splitlines()[0] == "TwoLayerNet(  # 39,760 parameters"
    assert "(fc1): Linear(in_features=784, out_features=50, bias=True)" in text
    assert "weight (784, 50), bias (50,): 39,250 parameters" in text
    assert "(relu): ReLU()" in text
    bn = repr(nn.BatchNorm1d(3))
    assert "running_mean (3,)" in bn and "6 parameters" in bn


def test_requires_grad_freezes():
    net = nn.Linear(2, 2).requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
    assert net.num_parameters(trainable_only=True) == 0 and net.num_parameters() == 6
