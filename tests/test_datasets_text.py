"""Tests for chainrule.datasets.text: tokens, the Vocabulary, text files as token ids."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from chainrule.datasets import (
    EOS,
    UNK,
    CorruptFileError,
    Vocabulary,
    load_corpus,
    read_text,
    tokenize,
)
from chainrule.tensor import Tensor

TEXT = " the cat sat \n on the  mat\n\nthe end \n"


# --------------------------------------------------------------------------- tokenize
def test_tokenize_words_and_eos() -> None:
    assert tokenize(TEXT) == ["the", "cat", "sat", "on", "the", "mat", "the", "end"]
    assert tokenize(TEXT, eos=EOS) == ["the", "cat", "sat", EOS, "on", "the", "mat", EOS,
                                       EOS, "the", "end", EOS]  # an empty line: just <eos>
    # Windows line ends and a missing final newline change nothing.
    assert tokenize("a b\r\nc", eos=EOS) == ["a", "b", EOS, "c", EOS]


def test_tokenize_characters() -> None:
    assert tokenize("ab c\nd", chars=True) == ["a", "b", " ", "c", "d"]
    assert tokenize("ab c\nd\n", chars=True, eos="\n") == list("ab c\nd\n")


# --------------------------------------------------------------------------- Vocabulary
def test_vocabulary_numbers_words_in_order_of_first_appearance() -> None:
    tokens = tokenize(TEXT, eos=EOS)
    vocabulary = Vocabulary(tokens)
    assert vocabulary.id_to_word == ["the", "cat", "sat", EOS, "on", "mat", "end"]
    assert vocabulary.word_to_id == {w: i for i, w in enumerate(vocabulary.id_to_word)}
    assert len(vocabulary) == 7 and "mat" in vocabulary and "dog" not in vocabulary
    ids = vocabulary.encode(tokens)
    assert ids.dtype == np.int64
    assert ids.tolist() == [0, 1, 2, 3, 4, 0, 5, 3, 3, 0, 6, 3]
    assert vocabulary.decode(ids) == tokens
    assert repr(vocabulary) == "Vocabulary(7 words, unk=None)"


def test_decode_any_shape_and_tensors() -> None:
    vocabulary = Vocabulary("a b c d".split())
    grid = np.array([[3, 0], [1, 2]])
    assert vocabulary.decode(grid) == [["d", "a"], ["b", "c"]]
    assert vocabulary.decode(Tensor(grid[0])) == ["d", "a"]
    assert vocabulary.decode(2) == "c"
    assert vocabulary.decode([]) == []
    with pytest.raises(ValueError, match=r"\[0, 4\).*from 0 to 4"):
        vocabulary.decode([0, 4])
    with pytest.raises(TypeError, match="integers"):
        vocabulary.decode([0.0, 1.0])


def test_unknown_words_are_an_error_without_unk() -> None:
    vocabulary = Vocabulary("the cat sat".split())
    with pytest.raises(ValueError) as info:
        vocabulary.encode("the dog sat on the dog".split())
    message = str(info.value)
    assert "2 distinct" in message and "'dog'" in message and "'on'" in message
    assert "unk='<unk>'" in message


def test_unknown_words_map_to_unk() -> None:
    # unk present in the tokens keeps its place in the order of first appearance ...
    vocabulary = Vocabulary(["a", UNK, "b"], unk=UNK)
    assert vocabulary.encode(["b", "zebra", "a"]).tolist() == [2, 1, 0]
    # ... and is appended when absent, so the other ids do not move.
    appended = Vocabulary(["a", "b"], unk=UNK)
    assert appended.id_to_word == ["a", "b", UNK]
    assert appended.encode(["zebra", "b"]).tolist() == [2, 1]


def test_vocabulary_round_trips_through_json() -> None:
    vocabulary = Vocabulary(tokenize(TEXT, eos=EOS), unk=UNK)
    saved = json.loads(json.dumps(vocabulary.to_dict()))
    restored = Vocabulary.from_dict(saved)
    assert restored == vocabulary and restored.unk == UNK
    assert restored.word_to_id == vocabulary.word_to_id
    assert restored != Vocabulary(tokenize(TEXT, eos=EOS))  # same words, no unk
    with pytest.raises(ValueError, match="to_dict"):
        Vocabulary.from_dict({"unk": None})
    with pytest.raises(ValueError, match="distinct"):
        Vocabulary.from_dict({"words": ["a", "a"], "unk": None})
    with pytest.raises(ValueError, match="unk"):
        Vocabulary.from_dict({"words": ["a"], "unk": UNK})


def test_vocabulary_rejects_a_string_or_non_string_tokens() -> None:
    with pytest.raises(TypeError, match=r"tokenize\(text\)"):
        Vocabulary("the cat")
    with pytest.raises(TypeError, match=r"tokenize\(text\)"):
        Vocabulary(["the"]).encode("the")
    with pytest.raises(TypeError, match="strings, got 3"):
        Vocabulary(["a", 3])  # type: ignore[list-item]


# --------------------------------------------------------------------------- files
def write(path: Path, text: str, gz: bool = False) -> Path:
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def test_load_corpus_plain_and_gzipped_agree(tmp_path: Path) -> None:
    plain = write(tmp_path / "a.txt", TEXT)
    packed = write(tmp_path / "a.txt.gz", TEXT, gz=True)
    ids, vocabulary = load_corpus(plain, eos=EOS)
    ids_gz, vocabulary_gz = load_corpus(packed, eos=EOS)
    np.testing.assert_array_equal(ids, ids_gz)
    assert vocabulary == vocabulary_gz
    assert vocabulary.decode(ids) == tokenize(TEXT, eos=EOS)
    assert int(np.sum(ids == vocabulary.word_to_id[EOS])) == len(TEXT.splitlines())
    no_eos, words_only = load_corpus(plain)
    assert EOS not in words_only and words_only.decode(no_eos) == tokenize(TEXT)

    chars, char_vocabulary = load_corpus(plain, chars=True, eos="\n")
    assert "".join(char_vocabulary.decode(chars)) == TEXT


def test_load_corpus_with_a_given_vocabulary(tmp_path: Path) -> None:
    train = write(tmp_path / "train.txt", "a b c\n")
    valid = write(tmp_path / "valid.txt", "c a d\n")
    _, strict = load_corpus(train, eos=EOS)
    with pytest.raises(ValueError, match="'d'"):
        load_corpus(valid, vocabulary=strict, eos=EOS)
    _, lenient = load_corpus(train, eos=EOS, unk=UNK)
    ids, same = load_corpus(valid, vocabulary=lenient, eos=EOS)
    assert same is lenient
    assert lenient.decode(ids) == ["c", "a", UNK, EOS]
    with pytest.raises(ValueError, match="unk applies"):
        load_corpus(valid, vocabulary=lenient, unk=UNK)


def test_read_text_checks_md5_gzip_and_utf8(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt.gz", TEXT, gz=True)
    md5 = hashlib.md5(TEXT.encode(), usedforsecurity=False).hexdigest()
    assert read_text(path, md5=md5) == TEXT  # the MD5 of the decompressed text
    with pytest.raises(CorruptFileError, match="MD5 of the decompressed content") as info:
        read_text(path, md5="0" * 32)
    assert info.value.path == path

    truncated = tmp_path / "cut.txt.gz"
    truncated.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(CorruptFileError, match="truncated") as info:
        read_text(truncated)
    assert info.value.path == truncated

    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(CorruptFileError, match="not UTF-8"):
        read_text(latin1)
    with pytest.raises(FileNotFoundError):
        read_text(tmp_path / "missing.txt")
