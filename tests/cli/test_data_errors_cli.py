"""Data errors in the command line's words: --data-dir and $CHAINRULE_DATA, never the
Python keywords; a missing --data-dir; Fashion-MNIST refused MNIST's files."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from click.testing import CliRunner

from chainrule.cli import main

MNIST_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """No dataset anywhere, and no network: downloading fails at once."""
    import chainrule.datasets._locate as locate
    from chainrule.datasets import DownloadError

    def offline(*args, **kwargs):
        raise DownloadError("offline (test)")

    monkeypatch.setattr(locate, "download_file", offline)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "nothing"))
    empty = tmp_path / "empty"
    empty.mkdir()
    return empty


@pytest.mark.parametrize("command", [
    ["train", "--dataset", "mnist"], ["train", "--dataset", "ptb"],
    ["gradcheck", "--dataset", "mnist"], ["experiment", "optimizers", "--dataset", "mnist"],
])
def test_a_missing_dataset_names_the_options_not_the_keywords(no_data, command):
    result = CliRunner().invoke(main, [*command, "--data-dir", str(no_data)])
    assert result.exit_code == 1, result.output
    assert "--data-dir" in result.output and "CHAINRULE_DATA" in result.output
    assert "data_dir=" not in result.output and "download=" not in result.output
    assert "Traceback" not in result.output


def test_a_corrupt_file_names_the_options_not_the_keywords(no_data):
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (no_data / f"{name}.gz").write_bytes(gzip.compress(b"\0\0\x08\x03" + b"\0" * 60))
    result = CliRunner().invoke(main, ["train", "--dataset", "mnist", "--data-dir",
                                       str(no_data)])
    assert result.exit_code == 1, result.output
    assert "--data-dir" in result.output and "download=" not in result.output


@pytest.mark.parametrize("command", [["train"], ["gradcheck"], ["experiment", "init"]])
def test_a_data_dir_that_does_not_exist_is_told_as_such(tmp_path, command):
    result = CliRunner().invoke(main, [*command, "--data-dir", str(tmp_path / "typo")])
    assert result.exit_code == 2, result.output
    assert "--data-dir" in result.output and "does not exist" in result.output


@pytest.mark.skipif(not MNIST_DIR.exists(), reason="shared MNIST not available")
def test_fashion_mnist_refuses_mnists_files(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    result = CliRunner().invoke(main, ["train", "--dataset", "fashion-mnist", "--data-dir",
                                       str(MNIST_DIR), "--epochs", "1"])
    assert result.exit_code == 1, result.output
    assert "this is MNIST's" in result.output and "Fashion-MNIST" in result.output


def test_fashion_mnist_refuses_a_gz_file_without_its_published_md5(tmp_path, monkeypatch):
    from chainrule.datasets import CorruptFileError, fashion_mnist

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress(b"something else"))
    with pytest.raises(CorruptFileError, match="published"):
        fashion_mnist("test", data_dir=tmp_path, download=False)
