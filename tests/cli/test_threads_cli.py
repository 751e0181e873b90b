"""``chainrule --threads N``: the BLAS limit is in force while the subcommand runs (one
thread by default), and a bad value is a usage error."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import chainrule
import chainrule.cli.explain as explain_cli
from chainrule.cli import main


@pytest.fixture
def seen_threads(monkeypatch):
    """What ``get_num_threads`` says while ``chainrule explain`` runs."""
    if chainrule.get_num_threads() is None:
        pytest.skip("this NumPy's BLAS does not report its threads to threadpoolctl")
    seen = []
    example = explain_cli.shopping_example

    def spying_example():
        seen.append(chainrule.get_num_threads())
        return example()

    monkeypatch.setattr(explain_cli, "shopping_example", spying_example)
    return seen


@pytest.mark.parametrize("args, expected", [([], 1), (["--threads", "1"], 1),
                                            (["--threads", "2"], 2)])
def test_threads_are_limited_inside_the_command(args, expected, seen_threads):
    before = chainrule.get_num_threads()
    with chainrule.num_threads(expected):  # what BLAS makes of it (capped at its build's)
        granted = chainrule.get_num_threads()
    result = CliRunner().invoke(main, [*args, "explain"])
    assert result.exit_code == 0, result.output
    assert seen_threads == [granted]
    assert chainrule.get_num_threads() == before  # restored when the command ends


@pytest.mark.parametrize("value", ["0", "auto", "AUTO"])
def test_zero_or_auto_leaves_blas_alone(value, seen_threads):
    before = chainrule.get_num_threads()
    result = CliRunner().invoke(main, ["--threads", value, "explain"])
    assert result.exit_code == 0, result.output
    assert seen_threads == [before]


@pytest.mark.parametrize("value", ["-1", "nan", "", "1.5", "two"])
def test_bad_thread_counts_exit_2(value):
    result = CliRunner().invoke(main, ["--threads", value, "explain"])
    assert result.exit_code == 2, result.output
    assert "--threads" in result.output and "Traceback" not in result.output
