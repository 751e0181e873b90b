"""``chainrule train`` end to end: the default run, a run folder, MNIST, bad arguments."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from chainrule.cli import main

MNIST_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


def run(*args: str):
    return CliRunner().invoke(main, ["train", *args])


def test_default_run_trains_digits_and_prints_test_accuracy():
    result = run("--epochs", "5", "--no-progress")
    assert result.exit_code == 0, result.output
    accuracy = float(re.search(r"test accuracy: ([0-9.]+)", result.output).group(1))
    assert accuracy > 0.85
    assert "epoch    5/5" in result.output


def test_run_folder_has_config_history_checkpoint_and_picture(tmp_path):
    out = tmp_path / "run"
    result = run("--model", "mlp", "--hidden", "32,16", "--optimizer", "adam", "--lr",
                 "0.01", "--lr-schedule", "cosine", "--epochs", "3", "--batch-norm",
                 "--out", str(out))
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["hidden"] == [32, 16] and config["optimizer"] == "adam"
    assert (out / "history.csv").read_text().startswith("epoch,train_loss")
    epochs = json.loads((out / "history.json").read_text())["epochs"]
    # cosine annealing over 3 epochs: lr·(1 + cos(πk/3))/2 for k = 0, 1, 2
    assert [round(row["lr"], 6) for row in epochs] == [0.01, 0.0075, 0.0025]
    assert (out / "model.npz").stat().st_size > 0
    assert (out / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_continues_an_interrupted_run_exactly(tmp_path):
    from chainrule.serialization import load

    common = ["--model", "mlp", "--hidden", "16", "--dropout", "0.2", "--subset", "300",
              "--no-progress"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert run(*common, "--epochs", "4", "--out", str(straight)).exit_code == 0
    assert run(*common, "--epochs", "2", "--out", str(split)).exit_code == 0  # "killed"
    # the saved settings are used: --model etc. need not be given again
    result = run("--out", str(split), "--resume", "--epochs", "4", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "resuming from" in result.output and "epoch    3/4" in result.output
    assert "epoch    1/4" not in result.output
    expected, resumed = load(straight / "model.npz"), load(split / "model.npz")
    for key in expected:
        np.testing.assert_array_equal(resumed[key], expected[key], err_msg=key)


def test_resume_without_a_run_folder_is_a_usage_error(tmp_path):
    assert run("--resume").exit_code == 2
    result = run("--resume", "--out", str(tmp_path / "nothing"))
    assert result.exit_code == 2 and "checkpoint.npz" in result.output


@pytest.mark.parametrize("args, message", [
    (["--dataset", "cifar"], "cifar"),
    (["--optimizer", "lbfgs"], "lbfgs"),
    (["--lr", "-1"], "lr"),
    (["--hidden", "ten"], "ten"),
    (["--batch-size", "0"], "batch-size"),
    (["--lr-schedule", "linear"], "lr-schedule"),
    (["--model", "deep-cnn"], "28×28"),  # digits are 8×8
])
def test_bad_arguments_exit_with_status_2(args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.skipif(not MNIST_DIR.exists(), reason="shared MNIST not available")
def test_one_epoch_on_an_mnist_subset(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    result = run("--dataset", "mnist", "--data-dir", str(MNIST_DIR), "--subset", "3000",
                 "--epochs", "1")
    assert result.exit_code == 0, result.output
    assert "3000 training and 10000 test samples" in result.output
    accuracy = float(re.search(r"test accuracy: ([0-9.]+)", result.output).group(1))
    assert accuracy > 0.6


def test_console_entry_point_runs_as_module():
    completed = subprocess.run([sys.executable, "-m", "chainrule", "train", "--help"],
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0
    assert "--dataset" in completed.stdout


def test_clip_applies_to_a_classifier_too(tmp_path):
    """--clip is not only for sequence models: it is shown and bounds every step."""
    from chainrule.serialization import load

    out, start = tmp_path / "clipped", tmp_path / "start"
    base = ["--epochs", "1", "--subset", "100", "--batch-size", "100", "--lr", "1.0",
            "--no-progress"]
    assert run(*base, "--lr", "1e-12", "--out", str(start)).exit_code == 0  # ≈ initial
    result = run(*base, "--clip", "0.001", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "sgd lr=1.0, clip 0.001, batch 100" in result.output
    before, after = load(start / "model.npz"), load(out / "model.npz")
    step = np.sqrt(sum(((after[k] - before[k]) ** 2).sum() for k in after))
    assert 0 < step <= 0.001 * (1 + 1e-4)  # one SGD step of lr·(clipped norm)
