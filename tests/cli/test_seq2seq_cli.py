"""``chainrule train --dataset addition|dates`` and ``chainrule eval`` end to end, on
small slices of the book's addition.txt (../shared/data/seq) and of generated dates."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from chainrule.cli import main
from chainrule.datasets import addition_lines

ADDITION = Path(__file__).resolve().parents[3] / "shared" / "data" / "seq" / "addition.txt"
needs_book = pytest.mark.skipif(not ADDITION.is_file(),
                                reason=f"the book's addition.txt not found at {ADDITION}")


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def accuracies(output: str) -> list[float]:
    return [float(v) for v in re.findall(r"test exact-match accuracy ([0-9.]+)", output)]


@pytest.fixture(scope="module")
def addition_run(tmp_path_factory):
    """Two epochs of a small peeky Seq2Seq on 3,000 of the book's sums, reversed."""
    if not ADDITION.is_file():
        pytest.skip(f"the book's addition.txt not found at {ADDITION}")
    out = tmp_path_factory.mktemp("addition") / "run"
    result = run("train", "--dataset", "addition", "--data-file", str(ADDITION), "--subset",
                 "3000", "--hidden", "32", "--reverse", "--peeky", "--epochs", "2",
                 "--no-progress", "--out", str(out))
    return out, result


@needs_book
def test_training_reports_exact_answers_and_writes_the_run(addition_run):
    out, result = addition_run
    assert result.exit_code == 0, result.output
    # the book's settings are the defaults: Adam lr 0.001, clip 5, batch 128
    assert "3,000 training and 5,000 test questions, 13 characters, questions " \
           "reversed; seq2seq (peeky)" in result.output
    assert "adam lr=0.001, clip 5.0, batch 128, 2 epochs" in result.output
    per_epoch = accuracies(result.output)
    assert len(per_epoch) == 2 and all(0 <= a <= 1 for a in per_epoch)
    final = float(re.search(r"test exact-match accuracy: ([0-9.]+) \((\d+)/5000\)",
                            result.output).group(1))
    assert final == per_epoch[-1]
    # examples: the question shown the right way round, the true answer, a mark, a guess
    shown = re.findall(r"^  Q (\d+\+\d+) +T (\d+) +([✓✗OX]) (.*)$", result.output, re.M)
    assert len(shown) == 6
    for question, true, mark, guess in shown:
        assert eval(question) == int(true)  # noqa: S307 - digits and one plus sign
        assert (mark in "✓O") == (guess.strip() == true)
    config = json.loads((out / "config.json").read_text())
    assert config["reverse"] and config["peeky"]
    assert config["data_file"] == str(ADDITION.resolve())  # stored absolute
    assert config["model"] == "seq2seq" and config["hidden"] == [32]
    assert len(json.loads((out / "vocabulary.json").read_text())["words"]) == 13
    history = json.loads((out / "history.json").read_text())["epochs"]
    assert [round(row["val_accuracy"], 4) for row in history] == per_epoch
    assert history[1]["train_loss"] < history[0]["train_loss"]
    assert json.loads((out / "result.json").read_text())["test_accuracy"] == \
        pytest.approx(final, abs=1e-4)
    for name in ("model.npz", "checkpoint.npz", "history.csv", "learning_curve.png"):
        assert (out / name).is_file(), name


@needs_book
def test_eval_gives_the_same_exact_match_accuracy(addition_run, tmp_path):
    out, result = addition_run
    final = re.search(r"test exact-match accuracy: ([0-9.]+ \(\d+/5000\))", result.output)
    evaluated = run("eval", str(out))
    assert evaluated.exit_code == 0, evaluated.output
    assert f"test exact-match accuracy: {final.group(1)}" in evaluated.output
    assert "seq2seq (peeky) on addition" in evaluated.output
    assert len(re.findall(r"^  Q ", evaluated.output, re.M)) == 10
    misplaced = run("eval", str(out), "--data-dir", str(tmp_path))
    assert misplaced.exit_code == 2 and "--data-file, not --data-dir" in misplaced.output
    other = tmp_path / "dates.txt"
    other.write_text("\n".join(f"{i:02d}.01.2000 _2000-01-{i:02d}" for i in range(1, 29))
                     + "\n")
    wrong = run("eval", str(out), "--data-file", str(other))
    assert wrong.exit_code == 1 and "not the data of this run" in wrong.output


def test_dates_default_to_the_books_attention_model_on_generated_data(tmp_path):
    result = run("train", "--dataset", "dates", "--subset", "400", "--hidden", "16",
                 "--wordvec", "8", "--epochs", "1", "--no-progress", "--out",
                 str(tmp_path / "dates"))
    assert result.exit_code == 0, result.output
    assert "dates (generated): 400 training and 5,000 test questions" in result.output
    assert "questions reversed; attention with 8-wide character vectors and 16-unit " \
           "LSTMs" in result.output
    assert len(accuracies(result.output)) == 1
    assert re.search(r"^  Q .{29}  T \d{4}-\d\d-\d\d  [✓✗OX] ", result.output, re.M)


def test_the_books_settings_are_the_defaults_and_flags_override_them():
    from chainrule.runs import RunConfig

    addition, dates = RunConfig.for_dataset("addition"), RunConfig.for_dataset("dates")
    assert (addition.model, addition.hidden, addition.wordvec) == ("seq2seq", [128], 16)
    assert (dates.model, dates.hidden, dates.reverse) == ("attention", [256], True)
    for c in (addition, dates):
        assert (c.optimizer, c.lr, c.batch_size, c.clip) == ("adam", 0.001, 128, 5.0)
    assert (addition.resolved_epochs(), dates.resolved_epochs()) == (25, 10)
    assert not addition.reverse and not addition.peeky
    assert RunConfig.for_dataset("dates", reverse=False).reverse is False


def test_bad_combinations_are_usage_errors():
    cases = [
        (["--dataset", "dates", "--peeky"], "--peeky is for --model seq2seq"),
        (["--dataset", "ptb", "--reverse"], "--reverse is for the question-answer"),
        (["--dataset", "digits", "--data-file", __file__], "--data-file is for --dataset text"),
        (["--dataset", "addition", "--model", "mlp"], "use --model seq2seq or attention"),
        (["--dataset", "digits", "--model", "attention"], "does not fit --dataset digits"),
        (["--dataset", "addition", "--layers", "2"], "one LSTM layer"),
        (["--dataset", "addition", "--hidden", "32,16"], "one --hidden size"),
        (["--dataset", "addition", "--data-dir", "."], "give it with --data-file"),
    ]
    for args, message in cases:
        result = run("train", *args, "--epochs", "1", "--no-progress")
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)


def test_a_malformed_file_is_reported_with_its_line(tmp_path):
    bad = tmp_path / "sums.txt"
    bad.write_text("1+2_3 \n4+5 9 \n")
    result = run("train", "--dataset", "addition", "--data-file", str(bad), "--no-progress")
    assert result.exit_code == 1 and "line 2: no '_'" in result.output


def test_resume_continues_exactly_and_keeps_the_scores(tmp_path):
    """Two epochs in one go, or one epoch and a resumed second: the same weights and the
    same exact-match scores in the history."""
    from chainrule.serialization import load

    data = tmp_path / "sums.txt"
    data.write_text("\n".join(addition_lines(600, digits=2, seed=1)) + "\n")
    common = ["train", "--dataset", "addition", "--data-file", str(data), "--hidden", "16",
              "--no-progress"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert run(*common, "--epochs", "2", "--out", str(straight)).exit_code == 0
    assert run(*common, "--epochs", "1", "--out", str(resumed)).exit_code == 0
    again = run("train", "--out", str(resumed), "--resume", "--epochs", "2", "--no-progress")
    assert again.exit_code == 0, again.output
    assert "resuming from" in again.output and "epoch   2/2" in again.output
    a, b = load(straight / "model.npz"), load(resumed / "model.npz")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    rows = [json.loads((folder / "history.json").read_text())["epochs"]
            for folder in (straight, resumed)]
    assert [r["val_accuracy"] for r in rows[0]] == [r["val_accuracy"] for r in rows[1]]
