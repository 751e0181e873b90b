"""Progress bars: tqdm's bar on stderr when forced on (``--progress``), nothing when
piped (CliRunner's default: stderr is not a terminal)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from chainrule._progress import progress_bar, progress_enabled, showing_progress
from chainrule.cli import main

COMMANDS = {
    "experiment": ["experiment", "optimizers", "--iterations", "3", "--dataset", "digits",
                   "--out", "{tmp}/exp"],
    "experiment-synthetic": ["experiment", "vanishing-gradients", "--iterations", "2",
                             "--out", "{tmp}/vg"],
    "gradcheck": ["gradcheck", "--batch", "1", "--sample", "2"],
    "train": ["train", "--epochs", "1", "--subset", "20", "--out", "{tmp}/run"],
}


def _stderr(result):
    try:
        return result.stderr
    except ValueError:  # click < 8.2 mixes stderr into output unless asked not to
        return result.output


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_bar_on_stderr_when_forced_none_when_piped(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shown = CliRunner().invoke(main, [*(a.format(tmp=tmp_path / "shown")
                                        for a in COMMANDS[name]), "--progress"])
    assert shown.exit_code == 0, shown.output
    assert "%|" in _stderr(shown), _stderr(shown)  # tqdm's bar: " 50%|█████     | 1/2"
    piped = CliRunner().invoke(main, [a.format(tmp=tmp_path / "piped")
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
