"""``chainrule eval RUN_DIR``: rebuild a trained run, report accuracy and pictures."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from chainrule.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs") / "digits"
    result = CliRunner().invoke(main, ["train", "--epochs", "2", "--no-progress", "--out",
                                       str(folder)])
    assert result.exit_code == 0, result.output
    return folder


def evaluate(*args: str):
    return CliRunner().invoke(main, ["eval", *args])


def test_eval_prints_the_same_accuracy_as_training_and_writes_pictures(run_dir):
    result = evaluate(str(run_dir))
    assert result.exit_code == 0, result.output
    trained = json.loads((run_dir / "result.json").read_text())
    accuracy = float(re.search(r"test accuracy: ([0-9.]+)", result.output).group(1))
    assert accuracy == pytest.approx(trained["test_accuracy"], abs=1e-4)
    assert "true \\ predicted" in result.output
    rows = [line.split() for line in result.output.splitlines() if re.match(r"^\d ", line)]
    assert [[int(v) for v in row[1:]] for row in rows] == trained["confusion_matrix"]
    for name in ("confusion_matrix.png", "misclassified.png"):
        assert (run_dir / name).read_bytes()[:4] == b"\x89PNG"


def test_a_folder_without_a_run_exits_with_status_2(tmp_path):
    result = evaluate(str(tmp_path))
    assert result.exit_code == 2
    assert "config.json" in result.output and "chainrule train --out" in result.output


def test_a_missing_folder_exits_with_status_2(tmp_path):
    result = evaluate(str(tmp_path / "nowhere"))
    assert result.exit_code == 2 and "does not exist" in result.output


def test_weights_that_do_not_fit_the_config_exit_with_status_2(run_dir, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    config = json.loads((run_dir / "config.json").read_text())
    config["hidden"] = [20]
    (broken / "config.json").write_text(json.dumps(config))
    (broken / "model.npz").write_bytes((run_dir / "model.npz").read_bytes())
    result = evaluate(str(broken))
    assert result.exit_code == 2 and "does not fit" in result.output


def test_help_has_examples():
    result = evaluate("--help")
    assert result.exit_code == 0 and "Examples:" in result.output
