"""``chainrule gradcheck``: the report table, sampling, JSON, bad arguments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from chainrule.cli import main


def run(*args: str):
    return CliRunner().invoke(main, ["gradcheck", *args])


def test_default_two_layer_net_on_digits_agrees_and_reports_the_speed_up():
    result = run("--batch", "2")
    assert result.exit_code == 0, result.output
    assert "TwoLayerNet" in result.output and "fc1.weight" in result.output
    assert "times faster" in result.output and "OK" in result.output
    assert "extrapolated" not in result.output


def test_sampling_is_said_to_be_extrapolated():
    result = run("--model", "mlp", "--hidden", "8,6", "--batch", "3", "--sample", "4")
    assert result.exit_code == 0, result.output
    assert "4 of 512" in result.output and "*extrapolated" in result.output


def test_cnn_with_a_small_sample():
    result = run("--model", "cnn", "--batch", "2", "--sample", "2")
    assert result.exit_code == 0, result.output
    assert "SimpleConvNet" in result.output and "conv1.weight" in result.output


def test_json_output():
    result = run("--model", "mlp", "--hidden", "5", "--batch", "2", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True and report["model"] == "MLP"
    assert [p["name"] for p in report["parameters"]][0] == "layers.0.weight"


@pytest.mark.parametrize("args, message", [
    (["--model", "resnet"], "resnet"),
    (["--dataset", "cifar"], "cifar"),
    (["--batch", "0"], "batch"),
    (["--sample", "0"], "sample"),
    (["--sample", "5", "--full"], "--full"),
    (["--hidden", "ten"], "ten"),
    (["--batch", "100000"], "only"),
])
def test_bad_arguments_exit_with_status_2(args, message):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_help_has_examples():
    result = run("--help")
    assert result.exit_code == 0 and "Examples:" in result.output


MNIST_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


@pytest.mark.skipif(not MNIST_DIR.exists(), reason="shared MNIST not available")
def test_cnn_on_mnist_is_sampled_automatically_and_agrees(tmp_path, monkeypatch):
    # Blank MNIST patches put zero-bias ReLUs exactly on their kink; the command moves
    # the biases off it, so the check passes.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    result = run("--model", "cnn", "--dataset", "mnist", "--data-dir", str(MNIST_DIR),
                 "--batch", "2")
    assert result.exit_code == 0, result.output
    assert "differencing 200 random elements" in result.output
    assert "200 of 432,000" in result.output and "OK" in result.output
