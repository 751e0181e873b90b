"""Every example script runs (with tiny settings) and shows what it promises."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
MNIST_DIR = ROOT.parent / "shared" / "data" / "mnist"
PTB_DIR = ROOT.parent / "shared" / "data" / "ptb"


def load(name: str) -> dict:
    """The example's functions, without running its command-line part."""
    return runpy.run_path(str(EXAMPLES / name), run_name="example")


def test_perceptron_learns_and_nand_or_fails_xor_and_a_hidden_layer_solves_it(capsys):
    results = load("perceptron_logic_gates.py")["main"](epochs=500, hidden_epochs=1000)
    assert results["AND"] == results["OR"] == results["NAND"] == 1.0
    assert results["XOR"] < 1.0
    assert results["XOR hidden"] == 1.0
    assert results["max weight difference"] < 1e-10  # by hand == autograd
    assert "FAILED" in capsys.readouterr().out


def test_mlp_fits_the_sine_curve(tmp_path, capsys):
    picture = tmp_path / "fit.png"
    error = load("mlp_sine_regression.py")["main"](iterations=300, plot=str(picture))
    assert error < 0.05
    assert picture.read_bytes()[:4] == b"\x89PNG"


def test_two_layer_net_falls_back_to_digits_without_mnist(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CHAINRULE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    accuracy = load("two_layer_mnist.py")["main"](epochs=1, data_dir=str(tmp_path),
                                                  download=False)
    out = capsys.readouterr().out
    assert "MNIST is not available" in out and "8x8 digits instead" in out
    assert 0.0 <= accuracy <= 1.0 and "epoch  1" in out


@pytest.mark.skipif(not MNIST_DIR.exists(), reason="shared MNIST not available")
def test_two_layer_net_on_mnist(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    accuracy = load("two_layer_mnist.py")["main"](epochs=1, data_dir=str(MNIST_DIR),
                                                  download=False, train_samples=3000)
    assert "MNIST, 3,000 training" in capsys.readouterr().out
    assert accuracy > 0.2


@pytest.mark.skipif(not PTB_DIR.exists(), reason="shared Penn Treebank not available")
def test_language_model_learns_and_writes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    results = load("rnnlm_ptb.py")["main"](data_dir=str(PTB_DIR), epochs=1, max_words=8000,
                                           words=12, print_every=2)
    out = capsys.readouterr().out
    assert "8,000 training words" in out
    progress = [float(line.split("perplexity")[1].split()[0])
                for line in out.splitlines() if " window " in line]
    assert len(progress) == 6 and progress[-1] < progress[0]  # it falls within the epoch
    assert results["test_perplexity"] < 10_000  # better than a uniform guess
    written = results["text"].split()
    assert " ".join(written[:5]) == "the meaning of life is" and len(written) > 5


def test_attention_dates_trains_reports_and_draws(tmp_path, capsys):
    picture = tmp_path / "attention.png"
    results = load("attention_dates.py")["main"](epochs=1, train_examples=600, hidden=16,
                                                 picture=str(picture))
    out = capsys.readouterr().out
    assert "600 training and 5,000 test dates from the generator" in out
    assert "epoch 1: loss" in out and 0.0 <= results["test_accuracy"] <= 1.0
    assert len(results["answer"]) == 10
    assert picture.read_bytes()[:4] == b"\x89PNG"


def test_gradient_check_agrees_in_float64_and_backprop_is_faster(capsys):
    results = load("gradient_check.py")["main"](batch=2, sample=5)
    assert results["max float64 difference"] < 1e-8
    assert results["max float32 difference"] > 100 * results["max float64 difference"]
    assert results["speed-up"] > 1
    assert "times faster" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["backprop_by_hand.py", "shopping_graph.py"])
def test_other_examples_run_as_scripts(tmp_path, name):
    if not (EXAMPLES / name).exists():
        pytest.skip(f"{name} is not there yet")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, str(EXAMPLES / name)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip()
