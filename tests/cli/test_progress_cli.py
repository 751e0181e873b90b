"""Progress bars: tqdm's bar on stderr when forced on (``--progress``), nothing when
piped (CliRunner's default: stderr is not a terminal)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from chainrule._progress import progress_bar, progress_enabled, showing_progress
from chainrule.cli import main
from chainrule.experiments import EXPERIMENTS

COMMANDS = {
    **{f"experiment {name}": ["experiment", name, "--iterations", "2", "--out", "{tmp}/exp",
                              *([] if name == "vanishing-gradients" else
                                ["--dataset", "digits"]),
                              *(["--trials", "2"] if name == "hyperparams" else [])]
       for name in EXPERIMENTS},
    "gradcheck": ["gradcheck", "--batch", "1", "--sample", "2"],
    "train": ["train", "--epochs", "1", "--subset", "20", "--out", "{tmp}/run"],
    "eval classifier": ["eval", "{runs}/digits"],
    "eval language model": ["eval", "{runs}/text"],
    "eval seq2seq": ["eval", "{runs}/dates"],
}
#: The bar each command draws (its description), besides tqdm's "%|".
BAR = {**{name: "" for name in COMMANDS}, "eval classifier": "predicting",
       "eval language model": "evaluating", "eval seq2seq": "answering"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three tiny trained runs to evaluate: a classifier, a language model of a text
    file, and a sequence-to-sequence model of generated dates."""
    folder = tmp_path_factory.mktemp("runs")
    text = folder / "story.txt"
    text.write_text("the cat sat on the mat and the dog sat on the log\n" * 40)
    for name, args in {
        "digits": ["--epochs", "1", "--subset", "20"],
        "text": ["--dataset", "text", "--data-file", str(text), "--hidden", "8", "--bptt",
                 "8", "--epochs", "1"],
        "dates": ["--dataset", "dates", "--subset", "100", "--hidden", "8", "--wordvec",
                  "4", "--epochs", "1"],
    }.items():
        result = CliRunner().invoke(main, ["train", *args, "--no-progress", "--out",
                                           str(folder / name)])
        assert result.exit_code == 0, result.output
    return folder


def _stderr(result):
    try:
        return result.stderr
    except ValueError:  # click < 8.2 mixes stderr into output unless asked not to
        return result.output


def test_every_command_with_long_work_takes_progress_options():
    """Each subcommand that trains, evaluates or checks has --progress/--no-progress
    (explain, graph and generate take a moment)."""
    takes = {name for name, command in main.commands.items()
             if any(p.name == "progress" for p in command.params)}
    assert takes == {"train", "eval", "gradcheck", "experiment"}
    assert {args[0] for args in COMMANDS.values()} == takes


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_bar_on_stderr_when_forced_none_when_piped(name, tmp_path, monkeypatch, request):
    monkeypatch.chdir(tmp_path)
    folders = request.getfixturevalue("runs") if name.startswith("eval") else None
    shown = CliRunner().invoke(main, [*(a.format(tmp=tmp_path / "shown", runs=folders)
                                        for a in COMMANDS[name]), "--progress"])
    assert shown.exit_code == 0, shown.output
    assert "%|" in _stderr(shown), _stderr(shown)  # tqdm's bar: " 50%|█████     | 1/2"
    assert BAR[name] in _stderr(shown), _stderr(shown)
    piped = CliRunner().invoke(main, [a.format(tmp=tmp_path / "piped", runs=folders)
                                      for a in COMMANDS[name]])
    assert piped.exit_code == 0, piped.output
    assert "%|" not in piped.output


def test_showing_progress_forces_and_restores(monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: False, raising=False)
    assert not progress_enabled()
    with showing_progress(True):
        assert progress_enabled()
        assert progress_enabled(False) is False  # an explicit argument wins
        with showing_progress(False):
            assert not progress_enabled()
        assert progress_enabled()
    assert not progress_enabled()


def test_a_terminal_shows_the_bar(monkeypatch, capsys):
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    with progress_bar(2, "working") as bar:
        bar.update(2)
    assert "working" in capsys.readouterr().err
