"""``chainrule experiment NAME``: each chapter-6 experiment, tiny, on the digits."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from chainrule.cli import main
from chainrule.experiments import format_table

MNIST_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


@pytest.fixture(autouse=True)
def no_mnist_anywhere(tmp_path, monkeypatch):
    """Experiments look for MNIST in $CHAINRULE_DATA and the cache: make both empty."""
    monkeypatch.delenv("CHAINRULE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def run(*args: str):
    return CliRunner().invoke(main, ["experiment", *args])


EXPERIMENTS = {
    "optimizers": (["--iterations", "4"], ["optimizers_loss.png", "optimizers.csv"],
                   ["SGD", "Momentum", "AdaGrad", "Adam"]),
    "init": (["--iterations", "4"], ["init_activations.png", "init_loss.png", "init.csv"],
             ["std 0.01", "Xavier", "He"]),
    "batchnorm": (["--iterations", "3"], ["batchnorm_accuracy.png", "batchnorm.csv"],
                  ["weight std", "batch norm"]),
    "overfit": (["--iterations", "6"], ["overfit_accuracy.png", "overfit.csv"],
                ["no regularisation", "weight decay 0.1", "dropout 0.2"]),
    "hyperparams": (["--iterations", "2", "--trials", "3"],
                    ["hyperparams_search.png", "hyperparams_best.png", "hyperparams.csv"],
                    ["val accuracy", "best 3 of 3 trials", "3 complete, 0 pruned"]),
}
HAS_OPTUNA = importlib.util.find_spec("optuna") is not None
NEEDS_OPTUNA = pytest.mark.skipif(not HAS_OPTUNA, reason='the hyperparams search is an '
                                  'Optuna study: pip install -e ".[distributed]"')


@pytest.mark.parametrize("name", [pytest.param(name, marks=NEEDS_OPTUNA)
                                  if name == "hyperparams" else name for name in EXPERIMENTS])
def test_each_experiment_runs_on_digits_and_writes_its_files(tmp_path, name):
    options, files, words = EXPERIMENTS[name]
    out = tmp_path / "out"
    result = run(name, "--dataset", "digits", "--out", str(out), *options)
    assert result.exit_code == 0, result.output
    assert "data: the built-in 8x8 digits" in result.output
    for word in words:
        assert word in result.output
    for file in files:
        assert (out / file).stat().st_size > 0, file
    table = next(f for f in files if f.endswith(".csv"))
    with open(out / table) as f:
        assert len(list(csv.DictReader(f))) > 0


def test_without_mnist_the_default_says_it_falls_back_to_digits(tmp_path):
    result = run("optimizers", "--iterations", "2", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "digits" in result.output and "MNIST was not found" in result.output


def test_asking_for_missing_mnist_fails_without_downloading(tmp_path):
    result = run("init", "--dataset", "mnist", "--data-dir", str(tmp_path), "--out",
                 str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "not found" in result.output and "Downloading was not attempted" in result.output


@pytest.mark.skipif(not MNIST_DIR.exists(), reason="shared MNIST not available")
def test_mnist_is_used_when_found(tmp_path):
    result = run("optimizers", "--data-dir", str(MNIST_DIR), "--iterations", "2", "--out",
                 str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "data: MNIST: 60,000 training" in result.output


@pytest.mark.parametrize("args, message", [
    (["dropout"], "dropout"),
    (["optimizers", "--iterations", "0"], "iterations"),
    (["optimizers", "--trials", "3"], "--trials"),
    (["init", "--storage", "sqlite:///hpo.db"], "--storage is for the hyperparams"),
    (["batchnorm", "--no-prune"], "--prune/--no-prune is for the hyperparams"),
    (["hyperparams", "--study", "s"], "--study names a study in --storage"),
    (["init", "--dataset", "cifar"], "cifar"),
])
def test_bad_arguments_exit_with_status_2(args, message):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_help_lists_the_experiments_and_examples():
    result = run("--help")
    assert result.exit_code == 0
    for word in ("optimizers", "init", "batchnorm", "overfit", "hyperparams",
                 "vanishing-gradients", "Examples:"):
        assert word in result.output


def test_format_table_aligns_numbers_right_and_text_left():
    text = format_table(["name", "value"], [{"name": "a", "value": 0.5},
                                            {"name": "long", "value": 12.25}])
    assert text.splitlines() == ["name    value", "----  -------", "a      0.5000",
                                 "long  12.2500"]


@NEEDS_OPTUNA
@pytest.mark.parametrize("url, status, message", [
    ("hpo.db", 2, "Invalid value for '--storage': 'hpo.db' is not a database URL"),
    ("nosuchdb://host/db", 2, "is not a database URL Optuna can use"),
    ("postgresql://me:secret@127.0.0.1:1/db", 1, "cannot open the study storage "
     "postgresql+psycopg2://me:***@127.0.0.1:1/db"),
])
def test_a_bad_storage_is_a_clear_error_without_a_traceback(tmp_path, url, status, message):
    result = run("hyperparams", "--dataset", "digits", "--iterations", "2", "--trials", "1",
                 "--storage", url, "--out", str(tmp_path))
    assert result.exit_code == status, result.output
    assert message in result.output and "Traceback" not in result.output
    assert "secret" not in result.output


@pytest.mark.parametrize("missing, storage", [("optuna", []),
                                              ("psycopg2", ["--storage", "postgresql://h/db"])])
def test_a_missing_engine_names_the_extra_to_install(tmp_path, monkeypatch, missing, storage):
    if missing != "optuna" and not HAS_OPTUNA:
        pytest.skip("needs optuna to reach the database driver")
    monkeypatch.setitem(sys.modules, missing, None)  # import fails as if not installed
    monkeypatch.delitem(sys.modules, "chainrule.hpo", raising=False)
    result = run("hyperparams", "--dataset", "digits", "--iterations", "2", "--trials", "1",
                 "--out", str(tmp_path), *storage)
    assert result.exit_code == 1, result.output
    assert f"needs {missing}, which is not installed" in result.output
    assert 'pip install -e ".[distributed]"' in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
