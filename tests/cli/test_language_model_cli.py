"""``chainrule train --dataset ptb``, ``eval`` and ``generate`` end to end, on a slice of
the real Penn Treebank (../shared/data/ptb)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from chainrule.cli import main

PTB_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "ptb"
pytestmark = pytest.mark.skipif(not (PTB_DIR / "ptb.train.txt.gz").is_file(),
                                reason=f"real Penn Treebank files not found in {PTB_DIR}")


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Parsed copies go to a cache of the test session, never the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))


def run(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A small LSTM language model trained for two epochs on 30,000 PTB tokens."""
    out = tmp_path_factory.mktemp("lm") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))
        result = run("train", "--dataset", "ptb", "--data-dir", str(PTB_DIR), "--subset",
                     "30000", "--hidden", "32", "--batch-size", "10", "--bptt", "20",
                     "--epochs", "2", "--no-progress", "--out", str(out))
    return out, result


def test_training_reports_falling_perplexity_and_writes_the_run(trained_run):
    out, result = trained_run
    assert result.exit_code == 0, result.output
    # the book's settings are the defaults for ptb: SGD lr 20, clip 0.25
    assert "lstm-lm with 1×32 LSTM" in result.output and "sgd lr=20.0" in result.output
    assert "clip 0.25" in result.output and "batch 10×20" in result.output
    valid = [float(v) for v in re.findall(r"validation perplexity +([0-9.]+)", result.output)]
    assert len(valid) == 2 and valid[1] < valid[0] < 10_000  # below a uniform guess
    test = float(re.search(r"test perplexity: ([0-9.]+)", result.output).group(1))
    assert test < 10_000
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "lstm-lm" and config["clip"] == 0.25 and config["bptt"] == 20
    assert len(json.loads((out / "vocabulary.json").read_text())["words"]) == 10_000
    assert json.loads((out / "result.json").read_text())["test_perplexity"] == \
        pytest.approx(test, abs=0.01)
    history = json.loads((out / "history.json").read_text())["epochs"]
    assert [round(row["val_perplexity"], 2) for row in history] == valid
    assert (out / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_eval_gives_the_same_test_perplexity(trained_run):
    out, result = trained_run
    trained = float(re.search(r"test perplexity: ([0-9.]+)", result.output).group(1))
    evaluated = run("eval", str(out))
    assert evaluated.exit_code == 0, evaluated.output
    assert f"test perplexity: {trained:.2f}" in evaluated.output


def test_generate_continues_the_prompt_reproducibly(trained_run):
    out, _ = trained_run
    first = run("generate", str(out), "--prompt", "the meaning of life is", "--words",
                "12", "--seed", "3")
    assert first.exit_code == 0, first.output
    assert first.output.startswith("the meaning of life is")
    assert "<unk>" not in first.output.split("is", 1)[1]
    assert first.output == run("generate", str(out), "--prompt", "the meaning of life is",
                               "--words", "12", "--seed", "3").output
    greedy = run("generate", str(out), "--prompt", "the stock", "--greedy", "--words", "5")
    assert greedy.exit_code == 0, greedy.output
    assert len(greedy.output.split()) >= 2


def test_generate_explains_bad_input(trained_run, tmp_path):
    out, _ = trained_run
    empty = run("generate", str(out), "--prompt", "   ")
    assert empty.exit_code == 2 and "at least one word" in empty.output
    bad_temperature = run("generate", str(out), "--temperature", "0")
    assert bad_temperature.exit_code == 2
    digits = tmp_path / "digits"
    assert run("train", "--epochs", "1", "--no-progress", "--out", str(digits)).exit_code == 0
    not_lm = run("generate", str(digits))
    assert not_lm.exit_code == 2 and "not a language model" in not_lm.output


def test_a_language_model_on_images_or_an_image_model_on_text_is_a_usage_error():
    wrong = run("train", "--dataset", "ptb", "--model", "mlp", "--epochs", "1")
    assert wrong.exit_code == 2 and "use --model lstm-lm" in wrong.output
    wrong = run("train", "--dataset", "digits", "--model", "lstm-lm", "--epochs", "1")
    assert wrong.exit_code == 2 and "does not fit --dataset digits" in wrong.output
    two_sizes = run("train", "--dataset", "ptb", "--hidden", "32,16")
    assert two_sizes.exit_code == 2 and "one --hidden size" in two_sizes.output


def test_resume_continues_a_language_model_exactly(tmp_path):
    """Two epochs in one go, or one epoch and a resumed second: the same weights."""
    from chainrule.serialization import load

    common = ["train", "--dataset", "ptb", "--data-dir", str(PTB_DIR), "--subset", "4000",
              "--hidden", "16", "--bptt", "10", "--dropout", "0.2", "--layers", "2",
              "--no-progress"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert run(*common, "--epochs", "2", "--out", str(straight)).exit_code == 0
    assert run(*common, "--epochs", "1", "--out", str(resumed)).exit_code == 0
    again = run("train", "--out", str(resumed), "--resume", "--epochs", "2", "--no-progress")
    assert again.exit_code == 0, again.output
    assert "resuming from" in again.output and "epoch   2/2" in again.output
    a, b = load(straight / "model.npz"), load(resumed / "model.npz")
    assert a.keys() == b.keys()
    for name in a:
        assert (a[name] == b[name]).all(), name


def test_a_transformer_language_model_trains_and_writes(tmp_path):
    """--model transformer-lm: AdamW and a context of --bptt tokens by default; eval and
    generate read it back like the LSTM."""
    out = tmp_path / "gpt"
    result = run("train", "--dataset", "ptb", "--data-dir", str(PTB_DIR), "--model",
                 "transformer-lm", "--subset", "20000", "--hidden", "32", "--layers", "1",
                 "--heads", "2", "--bptt", "64", "--epochs", "1", "--no-progress",
                 "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "transformer-lm with 1×32 Transformer, 2 heads, tied weights" in result.output
    assert "adamw lr=0.001" in result.output and "batch 32×64" in result.output
    test = float(re.search(r"test perplexity: ([0-9.]+)", result.output).group(1))
    assert test < 10_000
    assert f"test perplexity: {test:.2f}" in run("eval", str(out)).output
    written = run("generate", str(out), "--prompt", "the market", "--words", "20",
                  "--seed", "0")
    assert written.exit_code == 0 and len(written.output.split()) > 2, written.output
    odd = run("train", "--dataset", "ptb", "--model", "transformer-lm", "--hidden", "30",
              "--heads", "4", "--data-dir", str(PTB_DIR))
    assert odd.exit_code == 2 and "multiple of --heads" in odd.output


def _write_text(path: Path) -> Path:
    rng = __import__("numpy").random.default_rng(0)
    animals, places = ["cat", "dog", "bird", "fox"], ["mat", "log", "hill", "box"]
    lines = [f"the {rng.choice(animals)} sat on the {rng.choice(places)}" for _ in range(600)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_character_model_learns_any_text_file(tmp_path):
    """--dataset text --data-file F --chars: a character language model of the user's own
    text, split 90/5/5; generate continues a prompt character by character."""
    text = _write_text(tmp_path / "story.txt")
    out = tmp_path / "chars"
    result = run("train", "--dataset", "text", "--data-file", str(text), "--chars",
                 "--model", "transformer-lm", "--hidden", "32", "--layers", "2", "--heads",
                 "2", "--bptt", "32", "--batch-size", "8", "--epochs", "3", "--no-progress",
                 "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "words;" in result.output  # the header counts the vocabulary's tokens
    valid = [float(v) for v in re.findall(r"validation perplexity +([0-9.]+)", result.output)]
    vocabulary = len(json.loads((out / "vocabulary.json").read_text())["words"])
    assert vocabulary < 30 and valid[-1] < valid[0] and valid[-1] < vocabulary / 2
    written = run("generate", str(out), "--prompt", "the c", "--words", "40", "--greedy")
    assert written.exit_code == 0, written.output
    assert written.output.startswith("the c") and len(written.output) >= 40


def test_a_word_model_of_a_text_file_and_its_usage_errors(tmp_path):
    text = _write_text(tmp_path / "story.txt")
    result = run("train", "--dataset", "text", "--data-file", str(text), "--hidden", "16",
                 "--bptt", "8", "--epochs", "2", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "lstm-lm with 1×16 LSTM" in result.output
    assert float(re.search(r"test perplexity: ([0-9.]+)", result.output).group(1)) < 8
    no_file = run("train", "--dataset", "text")
    assert no_file.exit_code == 2 and "needs --data-file" in no_file.output
    chars_on_ptb = run("train", "--dataset", "ptb", "--chars")
    assert chars_on_ptb.exit_code == 2 and "--chars is for --dataset text" in chars_on_ptb.output
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("a b\n")
    too_small = run("train", "--dataset", "text", "--data-file", str(tiny))
    assert too_small.exit_code == 1 and "too few" in too_small.output
