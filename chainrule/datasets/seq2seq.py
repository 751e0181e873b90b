"""Toy sequence-to-sequence data: questions answered character by character.

The format is that of "Deep Learning from Scratch 2" (chapters 7 and 8): one example a
line, the question and the answer split at the first ``_``, each padded with spaces to
a fixed width::

    16+75  _91                       (addition: question 7 characters, answer 5)
    september 27, 1994           _1994-09-27     (dates: 29 and 11)

The answer keeps its leading ``_``: the decoder reads it as its start symbol. Every
character, spaces included, is a token; the vocabulary numbers them in order of first
appearance (question, then answer, line after line), as the book's ``sequence.py``
does. The book shuffles the lines with ``np.random.seed(1984)`` and keeps the last 10 %
for testing; ``sequence_pairs`` does the same with ``RandomState(1984)``, so the split
is exactly the book's and results compare.

``load_sequence_pairs(path)`` reads such a file (the book's ``addition.txt`` or
``date.txt``, or any other), ``sequence_pairs(lines)`` takes the lines themselves, and
``addition_lines`` and ``date_lines`` generate new data of the same kind, with no
download.
"""

from __future__ import annotations

import datetime
import numbers
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._files import check_digest, read_maybe_gzipped
from .errors import CorruptFileError
from .text import Vocabulary

__all__ = ["START", "BOOK_SPLIT_SEED", "DATE_FORMATS", "SequencePairs", "parse_pairs",
           "sequence_pairs", "load_sequence_pairs", "addition_lines", "date_lines"]

#: Where the answer starts; the decoder's first input.
START = "_"
#: The seed of the book's shuffle before the 90/10 split.
BOOK_SPLIT_SEED = 1984
#: The date formats ``date_lines`` writes: the book's four (``numeric`` 9/27/94,
#: ``long`` September 27, 1994, ``short`` Sep 27, 1994, ``weekday`` Tuesday, September
#: 27, 1994) and two day-first ones (``day-first`` 27 September 1994, ``dotted``
#: 27.09.1994).
DATE_FORMATS = ("numeric", "long", "short", "weekday", "day-first", "dotted")
# The longest date question: "wednesday, september 27, 1994".
_DATE_WIDTH = 29
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass
class SequencePairs:
    """Questions and answers as character ids, split into training and test examples.

    ``x_*`` are the questions (N, Tq) and ``t_*`` the answers (N, Ta), int64, each
    answer starting with the id of ``START``; ``vocabulary`` maps ids to characters.
    """

    x_train: np.ndarray
    t_train: np.ndarray
    x_test: np.ndarray
    t_test: np.ndarray
    vocabulary: Vocabulary

    @property
    def start_id(self) -> int:
        """The id of ``START``, the decoder's first input."""
        return self.vocabulary.word_to_id[START]

    def decode(self, ids: Any) -> list[str]:
        """Each row of ``ids`` (N, T) as a string (one string for 1-D ids)."""
        ids = np.asarray(ids)
        rows = self.vocabulary.decode(ids.reshape(-1, ids.shape[-1]))
        texts = ["".join(row) for row in rows]
        return texts[0] if ids.ndim == 1 else texts


def parse_pairs(lines: Iterable[str], source: str = "the lines"
                ) -> tuple[list[str], list[str]]:
    """Split every line at its first ``_`` into the question and the answer (which keeps
    the ``_``), checking that every question and every answer has the same width.

    Raises:
        ValueError: no lines, a line without ``_``, or a question or answer wider or
            narrower than the first line's (the message names ``source`` and the line).
    """
    questions, answers = [], []
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r\n")
        cut = line.find(START)
        if cut < 0:
            raise ValueError(f"{source}, line {number}: no '{START}' separating the "
                             f"question from the answer in {line!r}; every line must look "
                             f"like '16+75  _91  ' (question, then the answer starting "
                             f"with '{START}')")
        question, answer = line[:cut], line[cut:]
        if questions and (len(question), len(answer)) != (len(questions[0]),
                                                          len(answers[0])):
            raise ValueError(
                f"{source}, line {number}: question {question!r} and answer {answer!r} "
                f"are {len(question)} and {len(answer)} characters wide, but line 1's are "
                f"{len(questions[0])} and {len(answers[0])}; pad every question and every "
                f"answer with spaces to one width")
        if not question:
            raise ValueError(f"{source}, line {number}: the question before "
                             f"'{START}' is empty")
        questions.append(question)
        answers.append(answer)
    if not questions:
        raise ValueError(f"{source}: no examples (expected lines like '16+75  _91  ')")
    return questions, answers


def sequence_pairs(lines: Iterable[str], test_fraction: float = 0.1,
                   seed: int = BOOK_SPLIT_SEED, source: str = "the lines") -> SequencePairs:
    """Lines in the book's format as character ids, split into training and test parts.

    The lines are shuffled with ``np.random.RandomState(seed).permutation`` (the book's
    ``np.random.seed(1984)`` and shuffle) and the last ``int(N · test_fraction)`` of
    them are the test examples. The vocabulary holds every character in order of first
    appearance in the unshuffled lines (question, then answer).
    """
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, numbers.Real) \
            or not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be a number between 0 and 1, got "
                         f"{test_fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    questions, answers = parse_pairs(lines, source)
    n = len(questions)
    n_test = int(n * test_fraction)
    if n_test < 1 or n_test == n:
        raise ValueError(f"{source}: {n} example(s) cannot be split with test_fraction="
                         f"{test_fraction} into non-empty training and test parts")
    vocabulary = Vocabulary(c for q, a in zip(questions, answers) for c in q + a)
    x = vocabulary.encode(list("".join(questions))).reshape(n, -1)
    t = vocabulary.encode(list("".join(answers))).reshape(n, -1)
    order = np.random.RandomState(seed).permutation(n)
    x, t = x[order], t[order]
    cut = n - n_test
    return SequencePairs(x[:cut], t[:cut], x[cut:], t[cut:], vocabulary)


def load_sequence_pairs(path: str | os.PathLike, test_fraction: float = 0.1,
                        seed: int = BOOK_SPLIT_SEED, sha256: str | None = None
                        ) -> SequencePairs:
    """A file in the book's format (plain or gzipped UTF-8), e.g. its ``addition.txt``,
    as ``sequence_pairs`` splits it. ``sha256``, if given, is checked first.

    Raises:
        FileNotFoundError: no such file.
        CorruptFileError: bad gzip data, a wrong checksum, or bytes that are not UTF-8.
        ValueError: lines not in the format (see ``parse_pairs``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (expected lines like "
                                f"'16+75  _91  ', as in the book's addition.txt)")
    content = read_maybe_gzipped(path)
    if sha256 is not None:
        check_digest(path, content, sha256, "sha256")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CorruptFileError(path, f"not UTF-8 text ({err})") from err
    return sequence_pairs(text.splitlines(), test_fraction, seed, source=str(path))


# --------------------------------------------------------------------------- generators
def _check_count(count: Any) -> int:
    if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 1:
        raise ValueError(f"count must be a positive integer, got {count!r}")
    return int(count)


def addition_lines(count: int = 50_000, digits: int = 3, seed: int | None = 0
                   ) -> list[str]:
    """``count`` sums of two numbers with up to ``digits`` digits, in the book's format.

    Each number draws its length from 1..``digits`` uniformly and then its digits (so a
    leading zero makes it shorter), and each unordered pair occurs at most once: the
    statistics of the book's ``addition.txt``. Questions are ``2·digits + 1`` wide and
    answers ``digits + 2`` (``_`` included): for 3 digits ``123+45 _168 ``.
    """
    count = _check_count(count)
    if isinstance(digits, bool) or not isinstance(digits, numbers.Integral) \
            or not 1 <= digits <= 9:
        raise ValueError(f"digits must be an integer from 1 to 9, got {digits!r}")
    limit = 10 ** digits
    possible = limit * (limit + 1) // 2
    if count > possible:
        raise ValueError(f"there are only {possible:,} different sums of two numbers "
                         f"below {limit:,}, fewer than count={count:,}")
    rng = np.random.default_rng(seed)
    pairs: dict[tuple[int, int], tuple[int, int]] = {}  # unordered pair -> as drawn
    while len(pairs) < count:
        lengths = rng.integers(1, digits + 1, size=(4096, 2))
        for a, b in rng.integers(0, 10 ** lengths).tolist():
            pairs.setdefault((min(a, b), max(a, b)), (a, b))
            if len(pairs) == count:
                break
    width = 2 * digits + 1
    return [f"{a}+{b}".ljust(width) + START + str(a + b).ljust(digits + 1)
            for a, b in pairs.values()]


def _write_date(day: datetime.date, form: str, case: str) -> str:
    month, weekday = _MONTHS[day.month - 1], _WEEKDAYS[day.weekday()]
    if form == "numeric":
        return f"{day.month}/{day.day}/{day.year % 100:02d}"
    if form == "dotted":
        return f"{day.day:02d}.{day.month:02d}.{day.year}"
    text = {"long": f"{month} {day.day}, {day.year}",
            "short": f"{month[:3]} {day.day}, {day.year}",
            "weekday": f"{weekday}, {month} {day.day}, {day.year}",
            "day-first": f"{day.day} {month} {day.year}"}[form]
    return text.lower() if case == "lower" else text.upper() if case == "upper" else text


def date_lines(count: int = 50_000, seed: int | None = 0,
               formats: Sequence[str] = DATE_FORMATS, first_year: int = 1970,
               last_year: int = 2017) -> list[str]:
    """``count`` dates written in one of ``formats`` (see ``DATE_FORMATS``), each with
    its ISO form (YYYY-MM-DD) as the answer, in the book's format and widths (question
    29 characters, answer 11): ``september 27, 1994           _1994-09-27``.

    Days are drawn uniformly from ``first_year`` to ``last_year`` (repeats allowed), the
    format uniformly from ``formats``, and names are written capitalised (half the
    time), in lower case or in capitals, as in the book's ``date.txt``. Two-digit years
    (``numeric``) need a span under 100 years to be unambiguous.
    """
    count = _check_count(count)
    unknown = [f for f in formats if f not in DATE_FORMATS]
    if unknown or not formats or isinstance(formats, str):
        raise ValueError(f"formats must be a non-empty list from {DATE_FORMATS}, got "
                         f"{formats!r}")
    if not 1 <= first_year <= last_year <= 9999:
        raise ValueError(f"need 1 <= first_year <= last_year <= 9999, got {first_year} "
                         f"and {last_year}")
    if "numeric" in formats and last_year - first_year >= 100:
        raise ValueError(f"two-digit years (the numeric format) are ambiguous over "
                         f"{last_year - first_year + 1} years; keep the span under 100 "
                         "years or leave 'numeric' out of formats")
    rng = np.random.default_rng(seed)
    start = datetime.date(first_year, 1, 1).toordinal()
    days = rng.integers(start, datetime.date(last_year, 12, 31).toordinal() + 1, count)
    forms = rng.integers(0, len(formats), count)
    cases = rng.choice(["title", "title", "lower", "upper"], count)
    lines = []
    for ordinal, form, case in zip(days.tolist(), forms.tolist(), cases.tolist()):
        day = datetime.date.fromordinal(ordinal)
        lines.append(_write_date(day, formats[form], case).ljust(_DATE_WIDTH) + START
                     + day.isoformat())
    return lines
