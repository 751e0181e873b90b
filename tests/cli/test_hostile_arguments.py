"""Every ``chainrule`` subcommand, every option given hostile values (NaN, negative,
empty, a missing path, an unwritable path): none may end in a traceback. Each exits
with 0 (the value was fine), 1 (an environment failure, said in a line) or 2 (a usage
error naming the value)."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from chainrule.cli import main

HOSTILE = ["nan", "-1", "", "{missing}/x", "/proc/chainrule-unwritable/x"]
#: What each subcommand gets besides the hostile option, so that a run that goes
#: ahead stays tiny (later options win in click, so the hostile one comes last).
BASE = {
    "train": ["--epochs", "1", "--subset", "20", "--no-progress", "--out", "{tmp}/run"],
    "explain": [],
    "graph": ["-o", "{tmp}/g.dot"],
    "gradcheck": ["--batch", "1", "--sample", "2"],
    "eval": ["{run}"],
    "export": ["{run}", "-o", "{tmp}/model.onnx"],
    "generate": ["{run}"],
    "experiment": ["optimizers", "--iterations", "1", "--dataset", "digits", "--out",
                   "{tmp}/exp"],
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile") / "run"
    result = CliRunner().invoke(main, ["train", "--epochs", "1", "--subset", "20",
                                       "--no-progress", "--out", str(folder)])
    assert result.exit_code == 0, result.output
    return folder


def test_every_subcommand_is_walked():
    assert set(main.commands) == set(BASE)


def _cases():
    for param in main.params:  # the group's own options, before any subcommand
        if isinstance(param, click.Option) and not param.is_flag and param.name != "help":
            for value in HOSTILE:
                yield pytest.param("", max(param.opts, key=len), value,
                                   id=f"{max(param.opts, key=len)}={value!r} explain")
    for name, command in sorted(main.commands.items()):
        for param in command.params:
            if not isinstance(param, click.Option) or param.is_flag or \
                    param.name in ("help", "progress"):
                continue
            for value in HOSTILE:
                yield pytest.param(name, max(param.opts, key=len), value,
                                   id=f"{name} {max(param.opts, key=len)}={value!r}")
        for value in HOSTILE:  # as the positional argument, or a stray one
            yield pytest.param(name, None, value, id=f"{name} {value!r}")


@pytest.mark.parametrize("name, option, value", list(_cases()))
def test_no_traceback(name, option, value, run_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # what a command writes by default lands here
    monkeypatch.delenv("CHAINRULE_DEBUG", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "no-data"))

    def fill(text):
        return text.format(tmp=tmp_path, run=run_dir, missing=tmp_path / "missing")

    base = [fill(arg) for arg in BASE.get(name, [])]
    hostile = fill(value)
    if not name:  # a group option, then a quick subcommand
        args = [option, hostile, "explain"]
    else:
        args = [name, *base, option, hostile] if option else [name, hostile]
    result = CliRunner().invoke(main, args)
    assert "Traceback" not in result.output, result.output
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.output)
    assert "CHAINRULE_DEBUG" not in result.output, "only the last safety net caught it"
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
