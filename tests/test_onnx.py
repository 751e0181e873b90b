"""chainrule.onnx.export: the exported files pass onnx's checker and run in onnxruntime
with chainrule's outputs (to 1e-5) for the models chainrule has; anything the export
cannot write is named. Skipped, with the reason, where the [onnx] extra is missing."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from chainrule import nn, no_grad
from chainrule.onnx import UnsupportedOperationError, export

onnx = pytest.importorskip("onnx", reason='the [onnx] extra is missing: pip install -e ".[onnx]"')
ort = pytest.importorskip("onnxruntime",
                          reason='the [onnx] extra is missing: pip install -e ".[onnx]"')

TOLERANCE = dict(rtol=1e-5, atol=1e-5)


def run_onnx(path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def reference(model, x: np.ndarray) -> np.ndarray:
    training = model.training
    model.eval()
    with no_grad():
        out = model(x).data
    model.train(training)
    return out


def randomize_batch_norm(model, rng) -> None:
    """Running statistics and affine parameters that are not the initial 0, 1."""
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = module.num_features
            module.running_mean.data[...] = rng.standard_normal(c)
            module.running_var.data[...] = rng.uniform(0.5, 2.0, c)
            module.weight.data[...] = rng.uniform(0.5, 1.5, c)
            module.bias.data[...] = rng.standard_normal(c)


def images(rng, n: int, shape=(1, 28, 28)) -> np.ndarray:
    return rng.random((n, *shape), dtype=np.float32)


MODELS = {
    "TwoLayerNet": (lambda: nn.TwoLayerNet(784, 50, 10, seed=0),
                    lambda rng, n: rng.random((n, 784), dtype=np.float32)),
    "SimpleConvNet": (lambda: nn.SimpleConvNet(seed=0), images),
    "SimpleConvNet-flat-input": (lambda: nn.SimpleConvNet(seed=0),
                                 lambda rng, n: images(rng, n).reshape(n, -1)),
    "DeepConvNet": (lambda: nn.DeepConvNet(seed=0), images),
    "MLP-sigmoid-tanh": (lambda: nn.MLP([12, 9, 7, 4], activations=["sigmoid", "tanh", "linear"],
                                        seed=0),
                         lambda rng, n: rng.standard_normal((n, 12)).astype(np.float32)),
    "MLP-batch-norm-dropout": (lambda: nn.MLP([12, 9, 4], batch_norm=True, dropout=0.5, seed=0),
                               lambda rng, n: rng.standard_normal((n, 12)).astype(np.float32)),
    "convnet-batch-norm-avg-pool": (
        lambda: nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1, seed=0), nn.BatchNorm2d(4), nn.ReLU(),
            nn.AvgPool2d(3, 2, 1), nn.Conv2d(4, 5, (3, 2), stride=(1, 2), dilation=(2, 1), seed=1),
            nn.MaxPool2d(2, padding=1), nn.Dropout(0.3), nn.Flatten(),
            nn.Linear(5 * 2 * 2, 3, seed=2), nn.Softmax()),
        lambda rng, n: images(rng, n, (3, 14, 14))),
}


@pytest.mark.parametrize("name", MODELS)
def test_exported_model_runs_in_onnxruntime_with_chainrules_outputs(name, tmp_path, rng):
    make_model, make_input = MODELS[name]
    model = make_model()
    randomize_batch_norm(model, rng)
    path = export(model, make_input(rng, 2), tmp_path / "model.onnx")
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    assert model.training  # the export's evaluation mode is undone
    for batch in (1, 5):  # the batch axis is symbolic: any batch size runs
        x = make_input(rng, batch)
        got = run_onnx(path, x)
        np.testing.assert_allclose(got, reference(model, x), **TOLERANCE)


def test_the_file_holds_the_expected_onnx_operators(tmp_path, rng):
    path = export(nn.TwoLayerNet(6, 5, 3, seed=0), rng.random((2, 6)), tmp_path / "a.onnx")
    model = onnx.load(str(path))
    assert [n.op_type for n in model.graph.node] == ["Gemm", "Relu", "Gemm", "Identity"]
    assert model.opset_import[0].version == 13
    weights = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    assert weights["fc1.weight"].shape == (6, 5)  # chainrule's (in, out): Gemm's B as is
    flat = images(rng, 1).reshape(1, -1)  # MNIST rows, reshaped to images by the model
    deep = onnx.load(str(export(nn.DeepConvNet(seed=0), flat, tmp_path / "d.onnx")))
    kinds = [n.op_type for n in deep.graph.node]
    assert kinds.count("Conv") == 6 and kinds.count("MaxPool") == 3
    assert "Dropout" not in kinds  # evaluation mode: dropout is the identity
    assert {"Reshape", "Flatten"} <= set(kinds)  # flat input to images, images to rows


def test_softmax_output_and_a_newer_opset(tmp_path, rng):
    model = nn.SimpleConvNet(input_dim=(1, 12, 12), conv_params={"filter_num": 3}, seed=0)
    x = images(rng, 4, (1, 12, 12))
    path = export(model, x, tmp_path / "p.onnx", softmax=True, opset=17)
    got = run_onnx(path, x)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-5)
    logits = reference(model, x)
    expected = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(got, expected / expected.sum(1, keepdims=True), **TOLERANCE)
    assert onnx.load(str(path)).opset_import[0].version == 17


def test_an_unsupported_operation_is_named(tmp_path, rng):
    model = nn.Sequential(nn.Linear(4, 3, seed=0), nn.GELU())
    with pytest.raises(UnsupportedOperationError, match=r"GELU.*supported: .*Linear"):
        export(model, rng.random((2, 4)), tmp_path / "g.onnx")
    assert not (tmp_path / "g.onnx").exists()
    with pytest.raises(UnsupportedOperationError, match="layer norm"):
        export(nn.Sequential(nn.LayerNorm(4)), rng.random((2, 4)), tmp_path / "l.onnx")


def test_bad_arguments_are_explained(tmp_path, rng):
    model = nn.TwoLayerNet(4, 3, 2, seed=0)
    with pytest.raises(ValueError, match="opset must be an int from 13"):
        export(model, rng.random((2, 4)), tmp_path / "m.onnx", opset=11)
    with pytest.raises(TypeError, match="chainrule.nn.Module"):
        export(lambda x: x, rng.random((2, 4)), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="batch of numbers"):
        export(model, 3.0, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_the_file_is_written_atomically(tmp_path, rng, monkeypatch):
    """A failure while writing leaves the previous file whole and no temporary file."""
    target = tmp_path / "model.onnx"
    target.write_bytes(b"previous")
    proto = onnx.ModelProto

    def fail(self):
        raise OSError("disk full")
    monkeypatch.setattr(proto, "SerializeToString", fail)
    with pytest.raises(OSError, match="disk full"):
        export(nn.TwoLayerNet(4, 3, 2, seed=0), rng.random((2, 4)), target)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_a_missing_onnx_names_the_extra(tmp_path, rng, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ImportError, match=r'pip install -e "\.\[onnx\]"'):
        export(nn.TwoLayerNet(4, 3, 2, seed=0), rng.random((2, 4)), tmp_path / "m.onnx")


def test_chainrule_never_imports_onnx():
    code = ("import sys, chainrule, chainrule.nn, chainrule.train, chainrule.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('onnx', 'onnxruntime') or m == 'chainrule.onnx'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_pooling_options_uneven_padding_and_transposed_convolution(tmp_path, rng):
    """The options of issue 14's item 4 in onnxruntime: ceil_mode, dilation,
    count_include_pad=False, 'same' and uneven padding (Pad, then Conv), and the
    transposed convolution with output_padding and groups."""
    model = nn.Sequential(
        nn.Conv2d(3, 4, (2, 3), padding="same", seed=0), nn.ReLU(),
        nn.MaxPool2d(3, 2, 1, dilation=2, ceil_mode=True),
        nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, seed=1),
        nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
        nn.Conv2d(6, 2, 3, padding=(0, 2, 1, 1), seed=2),
        nn.AvgPool2d(2, ceil_mode=True))
    x = images(rng, 2, (3, 9, 8))
    path = export(model, x, tmp_path / "options.onnx")
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    kinds = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert {"Pad", "ConvTranspose", "MaxPool", "AveragePool"} <= set(kinds)
    for batch in (1, 3):
        x = images(rng, batch, (3, 9, 8))
        np.testing.assert_allclose(run_onnx(path, x), reference(model, x), **TOLERANCE)
    with pytest.raises(UnsupportedOperationError, match="divisor_override"):
        export(nn.Sequential(nn.AvgPool2d(2, divisor_override=3)), x, tmp_path / "d.onnx")
