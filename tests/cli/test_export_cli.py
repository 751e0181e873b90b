"""``chainrule export RUN_DIR -o model.onnx``: a trained classifier as an ONNX file,
checked in onnxruntime; bad input exits with status 2."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from chainrule.cli import main

onnx = pytest.importorskip("onnx", reason='the [onnx] extra is missing: pip install -e ".[onnx]"')
ort = pytest.importorskip("onnxruntime",
                          reason='the [onnx] extra is missing: pip install -e ".[onnx]"')


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs") / "digits"
    result = CliRunner().invoke(main, ["train", "--model", "mlp", "--hidden", "20",
                                       "--batch-norm", "--dropout", "0.2", "--epochs", "1",
                                       "--no-progress", "--out", str(folder)])
    assert result.exit_code == 0, result.output
    return folder


def export(*args: str):
    return CliRunner().invoke(main, ["export", *args])


def test_export_writes_a_file_that_onnxruntime_runs_like_chainrule(run_dir, tmp_path):
    target = tmp_path / "digits.onnx"
    result = export(str(run_dir), "-o", str(target), "--softmax")
    assert result.exit_code == 0, result.output
    onnx.checker.check_model(onnx.load(str(target)))
    difference = float(re.search(r"largest difference from chainrule ([0-9.e+-]+)",
                                 result.output).group(1))
    assert difference < 1e-5
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((3, 64), dtype=np.float32) * 16
    probabilities = session.run(None, {"input": x})[0]
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_an_existing_output_is_kept_without_force(run_dir, tmp_path):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"keep me")
    result = export(str(run_dir), "-o", str(target))
    assert result.exit_code == 2 and "--force" in result.output
    assert target.read_bytes() == b"keep me"
    assert export(str(run_dir), "-o", str(target), "--force").exit_code == 0
    assert target.read_bytes() != b"keep me"


@pytest.mark.parametrize("bad", ["no-run", "language-model", "opset"])
def test_bad_input_exits_with_status_2(bad, run_dir, tmp_path):
    folder, extra = run_dir, []
    if bad == "no-run":
        folder = tmp_path
    elif bad == "language-model":
        folder = tmp_path / "ptb"
        folder.mkdir()
        config = json.loads((run_dir / "config.json").read_text())
        config.update(dataset="ptb", model="lstm-lm", hidden=[20], batch_norm=False)
        (folder / "config.json").write_text(json.dumps(config))
    else:
        extra = ["--opset", "12"]
    result = export(str(folder), "-o", str(tmp_path / "m.onnx"), *extra)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "m.onnx").exists()
