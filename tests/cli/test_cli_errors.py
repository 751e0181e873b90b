"""Edges of the command line: a user mistake exits with status 2 and a message naming
the bad value, an environment failure with status 1 and one line; never a traceback."""

from __future__ import annotations

import gzip
import json
import shutil

import pytest
from click.testing import CliRunner

from chainrule.cli import main


def invoke(*args: str, **kwargs):
    return CliRunner().invoke(main, list(args), **kwargs)


def assert_clean(result, status: int, *words: str) -> None:
    """Exit ``status``, no traceback, and every one of ``words`` in the output."""
    assert result.exit_code == status, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or \
        isinstance(result.exception, SystemExit), repr(result.exception)
    for word in words:
        assert word in result.output, result.output


# --------------------------------------------------------------- non-finite numbers
@pytest.mark.parametrize("option", ["--lr", "--weight-decay", "--dropout", "--clip"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_numbers_are_refused_before_anything_is_written(tmp_path, option, value):
    out = tmp_path / "run"
    result = invoke("train", option, value, "--epochs", "1", "--out", str(out))
    assert_clean(result, 2, option, "not a finite number")
    assert not out.exists()


def test_generate_refuses_a_nan_temperature(tmp_path):
    result = invoke("generate", str(tmp_path), "--temperature", "nan")
    assert_clean(result, 2, "--temperature", "not a finite number")


def test_a_run_whose_loss_explodes_stops_with_advice():
    result = invoke("train", "--lr", "1e6", "--epochs", "3", "--subset", "200",
                    "--no-progress")
    assert_clean(result, 1, "training diverged", "smaller learning rate")
    assert "test accuracy" not in result.output


# --------------------------------------------------------------- resuming a broken run
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs") / "digits"
    result = invoke("train", "--epochs", "1", "--subset", "100", "--hidden", "8",
                    "--no-progress", "--out", str(folder))
    assert result.exit_code == 0, result.output
    return folder


def _broken_copy(finished_run, tmp_path, name):
    folder = tmp_path / name
    shutil.copytree(finished_run, folder)
    return folder


def test_resume_with_a_checkpoint_that_does_not_fit_the_config(finished_run, tmp_path):
    folder = _broken_copy(finished_run, tmp_path, "resized")
    config = json.loads((folder / "config.json").read_text())
    config["hidden"] = [20]
    (folder / "config.json").write_text(json.dumps(config))
    result = invoke("train", "--out", str(folder), "--resume", "--epochs", "2")
    assert_clean(result, 2, "does not fit the two-layer network")


def test_resume_from_a_truncated_checkpoint(finished_run, tmp_path):
    folder = _broken_copy(finished_run, tmp_path, "truncated")
    checkpoint = folder / "checkpoint.npz"
    checkpoint.write_bytes(checkpoint.read_bytes()[:2000])
    result = invoke("train", "--out", str(folder), "--resume", "--epochs", "2")
    assert_clean(result, 2, "checkpoint.npz cannot be resumed from")


@pytest.mark.parametrize("edit, message", [
    (lambda text: "{not json", "not a valid run configuration"),
    (lambda text: text.replace('"sgd"', '"lbfgs"'), "--optimizer 'lbfgs' is unknown"),
    (lambda text: text.replace('"lr": 0.1', '"lr": -3'), "--lr must be"),
    (lambda text: "[1, 2]", "not a valid run configuration"),
])
def test_resume_and_eval_with_a_bad_config_json(finished_run, tmp_path, edit, message):
    folder = _broken_copy(finished_run, tmp_path, "edited")
    config_path = folder / "config.json"
    config_path.write_text(edit(config_path.read_text()))
    assert_clean(invoke("train", "--out", str(folder), "--resume", "--epochs", "2"), 2,
                 message)
    assert_clean(invoke("eval", str(folder)), 2, message)


# --------------------------------------------------------------- data, files, drawings
def test_experiment_with_a_corrupt_data_file(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data = tmp_path / "data"
    data.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (data / f"{name}.gz").write_bytes(gzip.compress(b"\0\0\x08\x01" + b"\0" * 60))
    result = invoke("experiment", "optimizers", "--data-dir", str(data), "--iterations",
                    "2", "--out", str(tmp_path / "out"))
    assert_clean(result, 1, "ubyte.gz")


def test_graph_into_a_missing_folder(tmp_path):
    result = invoke("graph", "-o", str(tmp_path / "missing" / "folder" / "g.svg"))
    assert_clean(result, 2, "--output", "does not exist")


@pytest.mark.parametrize("expr, message", [
    ("9" * 400 + "*a", "too large"),
    ("-" * 999 + "a", "nested too deeply"),
    ("(" * 300 + "a" + ")" * 300, "not a valid expression"),
    ("a+" * 600 + "a", "characters long"),
])
def test_explain_limits_length_depth_and_numbers(expr, message):
    for command in ("explain", "graph"):
        extra = ["-o", "-"] if command == "graph" else []
        result = invoke(command, "--expr", expr, "--values", "a=1", *extra)
        assert_clean(result, 2, message)
        assert len(result.output) < 2000  # the expression is not echoed whole


def test_graph_of_a_500_term_sum_is_not_drawn_but_its_dot_text_is(tmp_path):
    expr = "+".join(["a"] * 500)
    result = invoke("graph", "--expr", expr, "--values", "a=1", "-o",
                    str(tmp_path / "sum.svg"))
    assert_clean(result, 2, "500 nodes", "at most 150", "sum.dot")
    assert not (tmp_path / "sum.svg").exists()
    dot = tmp_path / "sum.dot"
    assert_clean(invoke("graph", "--expr", expr, "--values", "a=1", "-o", str(dot)), 0)
    assert dot.read_text().startswith("digraph")


# --------------------------------------------------------------- the last safety net
@pytest.fixture
def broken_explain(monkeypatch):
    import chainrule.cli.explain as explain_cli

    def fail(*args, **kwargs):
        raise RuntimeError("something nobody foresaw\nsecond line")

    monkeypatch.setattr(explain_cli, "explain", fail)


def test_an_unexpected_error_is_one_line_and_status_1(broken_explain, monkeypatch):
    monkeypatch.delenv("CHAINRULE_DEBUG", raising=False)
    result = invoke("explain")
    assert_clean(result, 1, "RuntimeError: something nobody foresaw", "CHAINRULE_DEBUG=1")
    assert "second line" not in result.output


def test_chainrule_debug_shows_the_real_exception(broken_explain, monkeypatch):
    monkeypatch.setenv("CHAINRULE_DEBUG", "1")
    result = invoke("explain")
    assert isinstance(result.exception, RuntimeError)


def test_an_environment_failure_is_its_reason(monkeypatch):
    import chainrule.cli.explain as explain_cli

    def fail(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/somewhere")

    monkeypatch.setattr(explain_cli, "explain", fail)
    monkeypatch.delenv("CHAINRULE_DEBUG", raising=False)
    result = invoke("explain")
    assert_clean(result, 1, "Permission denied")
    assert "unexpected" not in result.output


# --------------------------------------------------------------- said, not silently changed
def test_a_second_hidden_size_for_two_layer_is_refused():
    result = invoke("train", "--hidden", "10,5", "--epochs", "1")
    assert_clean(result, 2, "--model two-layer has one hidden layer", "[10, 5]", "mlp")


def test_an_oversized_batch_is_reported():
    result = invoke("train", "--batch-size", "5000", "--subset", "50", "--epochs", "1",
                    "--no-progress")
    assert_clean(result, 0, "--batch-size 5000 is more than the 50 training samples")


def test_eval_does_not_load_the_training_split(tmp_path, monkeypatch):
    import numpy as np

    from chainrule import datasets, nn
    from chainrule.runs import RunConfig
    from chainrule.serialization import save

    run = tmp_path / "mnist-run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(
        RunConfig(dataset="mnist", hidden=[8], epochs=1).to_dict()))
    save(nn.TwoLayerNet(784, 8, 10, seed=0).state_dict(), run / "model.npz")
    splits = []

    def fake_mnist(split, **kwargs):
        splits.append(split)
        rng = np.random.default_rng(0)
        return rng.random((20, 784), dtype=np.float32), np.arange(20) % 10

    monkeypatch.setattr(datasets, "mnist", fake_mnist)
    assert_clean(invoke("eval", str(run)), 0, "test accuracy", "/20)")
    assert splits == ["test"]
