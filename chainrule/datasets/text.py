"""Text corpora: tokens, a vocabulary, and a text file as an array of token ids.

A language model sees text as one long array of integers. Getting there takes three
steps, each one function or class here::

    tokens = tokenize(read_text("book.txt"), eos=EOS)  # ["the", "cat", "<eos>", ...]
    vocabulary = Vocabulary(tokens, unk=UNK)           # word <-> id, first seen = id 0
    ids = vocabulary.encode(tokens)                    # array([0, 1, 2, ...])

or all at once: ``ids, vocabulary = load_corpus("book.txt", eos=EOS)``. The vocabulary
saves as JSON (``to_dict``/``from_dict``) next to a trained model, so that the model's
outputs can be turned back into words later (``vocabulary.decode(ids)``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._files import check_digest, read_maybe_gzipped
from .errors import CorruptFileError

__all__ = ["EOS", "UNK", "tokenize", "Vocabulary", "read_text", "load_corpus"]

#: The token marking the end of a line (of a sentence, in the Penn Treebank).
EOS = "<eos>"
#: The token standing for any word outside the vocabulary.
UNK = "<unk>"


def tokenize(text: str, chars: bool = False, eos: str | None = None) -> list[str]:
    """Split ``text`` into tokens, line by line.

    Args:
        text: the text; lines end where ``str.splitlines`` says (``\\n``, ``\\r\\n``...).
        chars: every character of a line is a token (spaces too); otherwise the tokens
            are the words between whitespace.
        eos: if given, a token appended at the end of every line, e.g. ``EOS``. With
            ``chars=True``, ``eos="\\n"`` keeps the line breaks as characters.

    Returns:
        The tokens, in order.
    """
    tokens: list[str] = []
    for line in text.splitlines():
        tokens.extend(line if chars else line.split())
        if eos is not None:
            tokens.append(eos)
    return tokens


class Vocabulary:
    """A two-way map between tokens and integer ids ``0 .. len - 1``.

    ``Vocabulary(tokens)`` gives each distinct token an id in order of first appearance
    (repeats are ignored), as the book "Deep Learning from Scratch 2" does: the first
    token gets 0. ``word_to_id`` and ``id_to_word`` are the two directions.

    Args:
        tokens: the tokens (e.g. from ``tokenize``), or the list of distinct words.
        unk: the token that stands for every word not in the vocabulary, e.g. ``UNK``;
            it is added at the end if ``tokens`` lacks it. Without one, encoding an
            unknown word is an error.
    """

    def __init__(self, tokens: Iterable[str] = (), unk: str | None = None) -> None:
        if isinstance(tokens, str):
            raise TypeError("Vocabulary takes a list of tokens, not one string; "
                            "split it with tokenize(text) (or list(text) for characters)")
        words = list(dict.fromkeys(tokens))  # distinct, in order of first appearance
        if unk is not None and unk not in words:
            words.append(unk)
        bad = next((w for w in words if not isinstance(w, str)), None)
        if bad is not None:
            raise TypeError(f"vocabulary tokens must be strings, got {bad!r} "
                            f"({type(bad).__name__})")
        self.id_to_word: list[str] = words
        self.word_to_id: dict[str, int] = {word: i for i, word in enumerate(words)}
        self.unk = unk

    def __len__(self) -> int:
        return len(self.id_to_word)

    def __contains__(self, word: object) -> bool:
        return word in self.word_to_id

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return self.id_to_word == other.id_to_word and self.unk == other.unk

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} words, unk={self.unk!r})"

    def encode(self, tokens: Sequence[str] | Iterable[str]) -> np.ndarray:
        """The ids of ``tokens`` as an int64 array; unknown ones become ``unk``'s id.

        Raises:
            ValueError: a token is not in the vocabulary and there is no ``unk``.
        """
        if isinstance(tokens, str):
            raise TypeError("encode takes a list of tokens, not one string; split it "
                            "with tokenize(text) (or list(text) for characters)")
        tokens = tokens if isinstance(tokens, list) else list(tokens)
        index = self.word_to_id
        if self.unk is not None:
            unk_id = index[self.unk]
            return np.fromiter((index.get(t, unk_id) for t in tokens), np.int64, len(tokens))
        try:
            return np.fromiter(map(index.__getitem__, tokens), np.int64, len(tokens))
        except KeyError:
            unknown = list(dict.fromkeys(t for t in tokens if t not in index))
            raise ValueError(
                f"{len(unknown)} distinct token(s) not in the vocabulary of {len(self)}, "
                f"e.g. {unknown[:5]}; build the vocabulary with unk='{UNK}' (or another "
                "token) to map unknown words to it, or from a text that contains them"
            ) from None

    def decode(self, ids: Any) -> Any:
        """The tokens of ``ids`` (a list, array or Tensor of any shape) as nested lists
        of the same shape: a plain list for 1-D ids, one token for a single id."""
        ids = np.asarray(ids)
        if ids.size == 0:
            ids = ids.astype(np.int64)  # np.asarray([]) is float64
        if ids.dtype.kind not in "iu":
            raise TypeError(f"ids must be integers, got an array of {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"ids must lie in [0, {len(self)}) for this vocabulary, got "
                             f"values from {ids.min()} to {ids.max()}")
        table = np.array(self.id_to_word, dtype=object)
        # Indexing with the flat ids always gives an array (a 0-d index would give a str).
        return table[ids.ravel()].reshape(ids.shape).tolist()

    def to_dict(self) -> dict[str, Any]:
        """``{"words": [...], "unk": ...}``: plain JSON data (``json.dump`` it)."""
        return {"words": list(self.id_to_word), "unk": self.unk}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Vocabulary:
        """The vocabulary saved by ``to_dict``, with the same ids."""
        if not isinstance(data, Mapping) or "words" not in data:
            raise ValueError("expected the dict from Vocabulary.to_dict(), with a 'words' "
                             f"list and an 'unk' entry; got {type(data).__name__}")
        words, unk = list(data["words"]), data.get("unk")
        if len(set(words)) != len(words) or (unk is not None and unk not in words):
            raise ValueError("the saved vocabulary is inconsistent: its words must be "
                             "distinct and include its unk token")
        return cls(words, unk=unk)


def read_text(path: str | os.PathLike, md5: str | None = None) -> str:
    """The text of a UTF-8 file, plain or gzipped.

    Args:
        path: the file.
        md5: if given, the MD5 of the decompressed bytes, checked before decoding.

    Raises:
        CorruptFileError: bad gzip data, a wrong checksum, or bytes that are not UTF-8.
    """
    path = Path(path)
    content = read_maybe_gzipped(path)
    if md5 is not None:
        check_digest(path, content, md5, "md5")
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CorruptFileError(path, f"not UTF-8 text ({err})") from err


def load_corpus(path: str | os.PathLike, vocabulary: Vocabulary | None = None,
                chars: bool = False, eos: str | None = None, unk: str | None = None
                ) -> tuple[np.ndarray, Vocabulary]:
    """A text file (plain or gzipped) as one int64 array of token ids.

    Args:
        path: the file.
        vocabulary: the ids to use (e.g. the training text's for a validation text);
            by default one is built from this file, in order of first appearance.
        chars, eos: how to split the text, as in ``tokenize``.
        unk: the unknown-word token of a vocabulary built here (see ``Vocabulary``).

    Returns:
        ``(ids, vocabulary)``.
    """
    if vocabulary is not None and unk is not None:
        raise ValueError("unk applies to a vocabulary built from the file; the given "
                         f"vocabulary has its own (unk={vocabulary.unk!r})")
    tokens = tokenize(read_text(path), chars=chars, eos=eos)
    if vocabulary is None:
        vocabulary = Vocabulary(tokens, unk=unk)
    return vocabulary.encode(tokens), vocabulary
