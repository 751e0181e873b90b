"""Every ``chainrule`` subcommand, every option given hostile values (NaN, negative,
empty, a missing path, an unwritable path): none may end in a traceback. Each exits
with 0 (the value was fine), 1 (an environment failure, said in a line) or 2 (a usage
error naming the value)."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from chainrule.cli import main

HOSTILE = ["nan", "inf", "-1", "0", "", "{missing}/x", "/proc/chainrule-unwritable/x"]
#: What each subcommand gets besides the hostile option, so that a run that goes
#: ahead stays tiny (later options win in click, so the hostile one comes last). A
#: command that reads a run folder is walked once for each kind of run it takes.
BASES = {
    "train": {"": ["--epochs", "1", "--subset", "20", "--no-progress", "--out",
                   "{tmp}/run"]},
    "explain": {"": []},
    "graph": {"": ["-o", "{tmp}/g.dot"]},
    "gradcheck": {"": ["--batch", "1", "--sample", "2"]},
    "eval": {"classifier": ["{runs}/classifier"], "language model": ["{runs}/lm"],
             "seq2seq": ["{runs}/seq2seq"]},
    "export": {"classifier": ["{runs}/classifier", "-o", "{tmp}/model.onnx"]},
    "generate": {"language model": ["{runs}/lm", "--words", "3"]},
    "experiment": {"": ["optimizers", "--iterations", "1", "--dataset", "digits", "--out",
                        "{tmp}/exp"]},
}
#: How each kind of run is trained (quickly), for eval and generate to read.
RUNS = {
    "classifier": ["--epochs", "1", "--subset", "20"],
    "lm": ["--dataset", "text", "--data-file", "{story}", "--hidden", "8", "--bptt", "8",
           "--epochs", "1"],
    "seq2seq": ["--dataset", "dates", "--subset", "100", "--hidden", "8", "--wordvec", "4",
                "--epochs", "1"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    story = folder / "story.txt"
    story.write_text("the cat sat on the mat and the dog sat on the log\n" * 40)
    for name, args in RUNS.items():
        result = CliRunner().invoke(main, ["train", *(a.format(story=story) for a in args),
                                           "--no-progress", "--out", str(folder / name)])
        assert result.exit_code == 0, result.output
    return folder


def test_every_subcommand_is_walked():
    assert set(main.commands) == set(BASES)


def _cases():
    for param in main.params:  # the group's own options, before any subcommand
        if isinstance(param, click.Option) and not param.is_flag and param.name != "help":
            for value in HOSTILE:
                yield pytest.param("", "", max(param.opts, key=len), value,
                                   id=f"{max(param.opts, key=len)}={value!r} explain")
    for name, command in sorted(main.commands.items()):
        for kind in BASES[name]:
            on = f" ({kind})" if kind else ""
            for param in command.params:
                if not isinstance(param, click.Option) or param.is_flag or \
                        param.name in ("help", "progress"):
                    continue
                for value in HOSTILE:
                    yield pytest.param(name, kind, max(param.opts, key=len), value,
                                       id=f"{name}{on} {max(param.opts, key=len)}={value!r}")
        for value in HOSTILE:  # as the positional argument, or a stray one
            yield pytest.param(name, next(iter(BASES[name])), None, value,
                               id=f"{name} {value!r}")


@pytest.mark.parametrize("name, kind, option, value", list(_cases()))
def test_no_traceback(name, kind, option, value, runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # what a command writes by default lands here
    monkeypatch.delenv("CHAINRULE_DEBUG", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "no-data"))

    def fill(text):
        return text.format(tmp=tmp_path, runs=runs, missing=tmp_path / "missing")

    base = [fill(arg) for arg in BASES[name][kind]] if name else []
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
