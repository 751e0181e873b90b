"""Ready-made datasets, returned as NumPy arrays ``(inputs, targets)``.

* ``mnist`` and ``fashion_mnist``: 70,000 28x28 images each, downloaded once, checked
  and cached (see ``chainrule.datasets.mnist_format`` for where files are looked for).
* ``ptb``: the Penn Treebank for language modelling, as ``(ids, vocabulary)``: token
  ids and the 10,000-word ``Vocabulary`` (found, downloaded and cached as MNIST is).
* ``load_sequence_pairs``, ``addition_lines``, ``date_lines``: the book's toy
  sequence-to-sequence tasks (sums, dates to ISO form), read from its files or
  generated, as ``SequencePairs`` of character ids.
* ``digits``: scikit-learn's 1,797 8x8 digits, no download needed.
* ``logic_gate``, ``spiral``, ``sine``: tiny generated problems.

Wrap the arrays in ``chainrule.data.TensorDataset`` and a ``DataLoader`` to train (a
token stream in ``chainrule.data.BPTTLoader``). ``tokenize``, ``Vocabulary`` and
``load_corpus`` turn any text file into token ids.
"""

from .digits import DIGITS_CLASSES, digits
from .errors import CorruptFileError, DatasetNotFoundError, DownloadError
from .mnist_format import FASHION_MNIST_CLASSES, MNIST_CLASSES, fashion_mnist, mnist
from .ptb import ptb
from .seq2seq import (
    BOOK_SPLIT_SEED,
    DATE_FORMATS,
    START,
    SequencePairs,
    addition_lines,
    date_lines,
    load_sequence_pairs,
    parse_pairs,
    sequence_pairs,
)
from .synthetic import LOGIC_GATES, logic_gate, sine, spiral
from .text import EOS, UNK, Vocabulary, load_corpus, read_text, tokenize

__all__ = [
    "mnist",
    "fashion_mnist",
    "ptb",
    "digits",
    "logic_gate",
    "spiral",
    "sine",
    "MNIST_CLASSES",
    "FASHION_MNIST_CLASSES",
    "DIGITS_CLASSES",
    "LOGIC_GATES",
    "Vocabulary",
    "tokenize",
    "read_text",
    "load_corpus",
    "EOS",
    "UNK",
    "DatasetNotFoundError",
    "CorruptFileError",
    "DownloadError",
    "SequencePairs",
    "sequence_pairs",
    "load_sequence_pairs",
    "parse_pairs",
    "addition_lines",
    "date_lines",
    "START",
    "BOOK_SPLIT_SEED",
    "DATE_FORMATS",
]
