"""Tests for chainrule.datasets.ptb, on the real Penn Treebank files in ../shared/data/ptb.

As in test_datasets.py, no test touches the network or the real home cache: the cache is
a temporary folder and downloads come from file:// mirrors.
"""

from __future__ import annotations

import dataclasses
import gzip
import importlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from chainrule.datasets import (
    EOS,
    UNK,
    CorruptFileError,
    DatasetNotFoundError,
    Vocabulary,
    ptb,
)

# The module, not the function of the same name that chainrule.datasets exports.
ptb_module = importlib.import_module("chainrule.datasets.ptb")

# CI clones the repository with shared/ beside it (as test_datasets.py finds MNIST).
PTB_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "ptb"
FILES = ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt")
TOKENS = {"train": 929_589, "valid": 73_760, "test": 82_430}
LINES = {"train": 42_068, "valid": 3_370, "test": 3_761}
FIRST_WORDS = {
    "train": "aer banknote berlitz calloway centrust cluett fromstein gitano guterman "
             "hydro-quebec ipo kia memotec mlx nahb punts rake regatta rubens sim "
             "snack-food ssangyong swapo wachter <eos> pierre <unk> N years old".split(),
    "valid": "consumers may want to move their telephones a little closer to the tv set "
             "<eos> <unk> <unk> watching abc 's".split(),
    "test": "no it was n't black monday <eos> but while the new york".split(),
}

pytestmark = pytest.mark.skipif(
    not all((PTB_DIR / f"{name}.gz").is_file() for name in FILES),
    reason=f"real Penn Treebank files not found in {PTB_DIR}",
)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty cache and no $CHAINRULE_DATA."""
    cache = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("CHAINRULE_DATA", raising=False)
    return cache / "chainrule"


@pytest.fixture(scope="module")
def shared_cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the tests that only read, so the text is tokenised only once."""
    return tmp_path_factory.mktemp("shared-xdg-cache")


@pytest.fixture
def real_ptb(shared_cache_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(shared_cache_root))
    return PTB_DIR


def copy_files(folder: Path, names: tuple[str, ...] = FILES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(PTB_DIR / f"{name}.gz", folder / f"{name}.gz")
    return folder


def raw_text(name: str) -> bytes:
    return gzip.decompress((PTB_DIR / f"{name}.gz").read_bytes())


# --------------------------------------------------------------------------- content
def test_splits_counts_vocabulary_and_first_words(real_ptb: Path) -> None:
    train_ids, vocabulary = ptb("train", data_dir=real_ptb)
    assert isinstance(vocabulary, Vocabulary) and len(vocabulary) == 10_000
    assert vocabulary.unk == UNK and UNK in vocabulary and EOS in vocabulary
    # Numbered in order of first appearance in the training text, as the book does.
    np.testing.assert_array_equal(train_ids[:24], np.arange(24))
    assert np.unique(train_ids).tolist() == list(range(10_000))
    for split in ("train", "valid", "test"):
        ids, split_vocabulary = ptb(split, data_dir=real_ptb)
        assert ids.shape == (TOKENS[split],) and ids.dtype == np.int64
        assert split_vocabulary == vocabulary  # the same ids for every split
        assert int(np.sum(ids == vocabulary.word_to_id[EOS])) == LINES[split]
        assert ids[-1] == vocabulary.word_to_id[EOS]
        first = FIRST_WORDS[split]
        assert vocabulary.decode(ids[:len(first)]) == first


def test_ids_agree_with_a_plain_reading_of_the_text(real_ptb: Path) -> None:
    """The book's own recipe: replace each newline by ' <eos> ' and split."""
    ids, vocabulary = ptb("valid", data_dir=real_ptb)
    words = raw_text("ptb.valid.txt").decode().replace("\n", f" {EOS} ").split()
    assert vocabulary.decode(ids) == words


def test_bad_split(real_ptb: Path) -> None:
    with pytest.raises(ValueError, match=r"'train', 'valid' or 'test'.*'validation'"):
        ptb("validation", data_dir=real_ptb)


def test_chainrule_data_env_folder_or_its_ptb_subfolder(
        real_ptb: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for folder in (real_ptb, real_ptb.parent):  # the folder itself, or <folder>/ptb
        monkeypatch.setenv("CHAINRULE_DATA", str(folder))
        ids, _ = ptb("test", download=False)
        assert len(ids) == TOKENS["test"]


# --------------------------------------------------------------------------- cache
def test_reload_comes_from_the_parsed_cache(tmp_path: Path, isolated_cache: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    folder = copy_files(tmp_path / "src")
    first, vocabulary = ptb("valid", data_dir=folder)
    assert len(list((isolated_cache / "ptb").glob("ptb-*.npz"))) == 1

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("the text was read or tokenised again")

    monkeypatch.setattr(ptb_module, "read_text", no_reading)
    monkeypatch.setattr(ptb_module, "tokenize", no_reading)
    again, vocabulary_again = ptb("valid", data_dir=folder)
    np.testing.assert_array_equal(again, first)
    assert vocabulary_again == vocabulary
    # One parse cached every split.
    assert len(ptb("train", data_dir=folder)[0]) == TOKENS["train"]


def test_damaged_cache_is_rebuilt_and_a_changed_file_checked_again(
        tmp_path: Path, isolated_cache: Path) -> None:
    folder = copy_files(tmp_path / "src")
    expected, _ = ptb("test", data_dir=folder)
    (npz,) = (isolated_cache / "ptb").glob("ptb-*.npz")
    npz.write_bytes(b"not a zip file")
    np.testing.assert_array_equal(ptb("test", data_dir=folder)[0], expected)

    # The cache is keyed by the files: replacing one means checking it again.
    text = raw_text("ptb.test.txt").replace(b" black monday ", b" black friday ", 1)
    (folder / "ptb.test.txt.gz").write_bytes(gzip.compress(text, compresslevel=1))
    with pytest.raises(CorruptFileError, match="MD5"):
        ptb("test", data_dir=folder)


# --------------------------------------------------------------------------- bad files
def test_corrupt_file_is_named(tmp_path: Path) -> None:
    folder = copy_files(tmp_path / "corrupt")
    target = folder / "ptb.valid.txt.gz"
    text = bytearray(raw_text("ptb.valid.txt"))
    text[1000] = ord("#")
    target.write_bytes(gzip.compress(bytes(text), compresslevel=1))
    with pytest.raises(CorruptFileError) as info:
        ptb("train", data_dir=folder, download=False)
    message = str(info.value)
    assert info.value.path == target
    assert "MD5 of the decompressed content" in message and "aa0affc06ff7c36e" in message
    assert "delete it" in message

    target.write_bytes(gzip.compress(bytes(text))[:5000])
    with pytest.raises(CorruptFileError, match="truncated") as info:
        ptb("train", data_dir=folder, download=False)
    assert info.value.path == target


def test_missing_file_lists_the_folders_searched(tmp_path: Path, isolated_cache: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    folder = copy_files(tmp_path / "partial", names=("ptb.train.txt", "ptb.valid.txt"))
    env = tmp_path / "env"
    monkeypatch.setenv("CHAINRULE_DATA", str(env))
    with pytest.raises(DatasetNotFoundError) as info:
        ptb("train", data_dir=folder, download=False)
    message = str(info.value)
    for expected in ("Penn Treebank", "ptb.train.txt, ptb.valid.txt and ptb.test.txt",
                     str(folder), str(env), str(env / "ptb"), str(isolated_cache / "ptb"),
                     "data_dir=", "CHAINRULE_DATA", "download=False", "download=True"):
        assert expected in message


# --------------------------------------------------------------------------- download
def plain_mirror(folder: Path) -> str:
    """A file:// mirror serving the three plain text files, as the real mirrors do."""
    folder.mkdir(parents=True)
    for name in FILES:
        (folder / name).write_bytes(raw_text(name))
    return folder.as_uri() + "/"


def test_download_from_local_mirror_then_load(tmp_path: Path, isolated_cache: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    url = plain_mirror(tmp_path / "mirror")
    dead = (tmp_path / "dead-mirror").as_uri() + "/"
    # Only the mirrors change: the published MD5s must match the real text.
    monkeypatch.setattr(ptb_module, "PTB",
                        dataclasses.replace(ptb_module.PTB, mirrors=(dead, url)))
    ids, vocabulary = ptb("valid")  # nothing anywhere: downloads via the second mirror
    assert len(ids) == TOKENS["valid"] and len(vocabulary) == 10_000
    cached = isolated_cache / "ptb"
    for name in FILES:
        assert (cached / name).read_bytes() == raw_text(name)
    assert not list(cached.glob(".*"))  # no temporary files left behind
    # Now found in the cache, without downloading.
    assert len(ptb("test", download=False)[0]) == TOKENS["test"]


def test_download_md5_mismatch_is_reported(tmp_path: Path, isolated_cache: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = tmp_path / "mirror"
    url = plain_mirror(mirror)
    (mirror / "ptb.test.txt").write_bytes(raw_text("ptb.test.txt")[:-1])
    monkeypatch.setattr(ptb_module, "PTB", dataclasses.replace(ptb_module.PTB, mirrors=(url,)))
    with pytest.raises(DatasetNotFoundError,
                       match=r"(?s)Downloading failed.*ptb\.test\.txt.*MD5 mismatch"):
        ptb("train")
    assert not (isolated_cache / "ptb" / "ptb.test.txt").exists()


def test_parsing_shows_a_bar_loading_the_parsed_copy_none(capsys):
    from chainrule._progress import showing_progress

    with showing_progress(True):
        ptb("test", data_dir=PTB_DIR)
        first = capsys.readouterr().err
        ptb("test", data_dir=PTB_DIR)
        again = capsys.readouterr().err
    assert "checking the Penn Treebank" in first and "%|" in first, first
    assert again == ""
