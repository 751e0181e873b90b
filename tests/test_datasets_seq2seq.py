"""The book's question-answer format: reading, checking, splitting as the book does, and
the generators of sums and dates."""

from __future__ import annotations

import datetime
import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from chainrule.datasets import (
    BOOK_SPLIT_SEED,
    DATE_FORMATS,
    START,
    CorruptFileError,
    addition_lines,
    date_lines,
    load_sequence_pairs,
    parse_pairs,
    sequence_pairs,
)

SEQ_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "seq"


def _book_file(name: str) -> Path:
    """The book's file, checked against the SHA256SUMS beside it (skip if absent)."""
    path = SEQ_DIR / name
    if not path.is_file():
        pytest.skip(f"the book's {name} not found in {SEQ_DIR}")
    sums = dict(reversed(line.split()) for line in (SEQ_DIR / "SHA256SUMS").read_text()
                .splitlines() if line.strip())
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sums[name]
    return path


def _book_load_data(path: Path, seed: int = 1984):
    """The book's dataset/sequence.py load_data, step by step (global seed, shuffle)."""
    questions, answers, char_to_id = [], [], {}
    for line in open(path):
        idx = line.find("_")
        questions.append(line[:idx])
        answers.append(line[idx:-1])
    for q, a in zip(questions, answers):
        for c in q + a:
            char_to_id.setdefault(c, len(char_to_id))
    x = np.array([[char_to_id[c] for c in q] for q in questions])
    t = np.array([[char_to_id[c] for c in a] for a in answers])
    saved = np.random.get_state()
    try:
        indices = np.arange(len(x))
        np.random.seed(seed)
        np.random.shuffle(indices)
    finally:
        np.random.set_state(saved)
    x, t = x[indices], t[indices]
    split_at = len(x) - len(x) // 10
    return (x[:split_at], t[:split_at]), (x[split_at:], t[split_at:]), char_to_id


@pytest.mark.parametrize("name, widths", [("addition.txt", (7, 5)), ("date.txt", (29, 11))])
def test_the_books_files_split_exactly_as_the_book_does(name, widths):
    path = _book_file(name)
    data = load_sequence_pairs(path)
    (x_train, t_train), (x_test, t_test), char_to_id = _book_load_data(path)
    assert data.vocabulary.word_to_id == char_to_id
    for ours, books in [(data.x_train, x_train), (data.t_train, t_train),
                        (data.x_test, x_test), (data.t_test, t_test)]:
        np.testing.assert_array_equal(ours, books)
    assert data.x_train.shape == (45_000, widths[0]) and data.t_test.shape == (5_000,
                                                                              widths[1])
    assert data.x_train.dtype == np.int64
    assert (data.t_train[:, 0] == data.start_id).all()
    lines = path.read_text().splitlines()
    first_test = lines[np.random.RandomState(BOOK_SPLIT_SEED).permutation(50_000)[45_000]]
    assert data.decode(data.x_test[0]) + data.decode(data.t_test[0]) == first_test


def test_a_sha256_is_checked_and_gzipped_files_read(tmp_path):
    lines = ["1+2_3 ", "4+5_9 ", "8+9_17", "7+7_14"] * 5
    plain = tmp_path / "sums.txt"
    plain.write_text("\n".join(lines) + "\n")
    packed = tmp_path / "sums.txt.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    digest = hashlib.sha256(plain.read_bytes()).hexdigest()
    a = load_sequence_pairs(plain, sha256=digest)
    b = load_sequence_pairs(packed, sha256=digest)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert len(a.x_test) == 2 and a.decode(a.t_train).count("_3 ") >= 3
    with pytest.raises(CorruptFileError, match="SHA-256"):
        load_sequence_pairs(plain, sha256="0" * 64)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_sequence_pairs(tmp_path / "missing.txt")


def test_malformed_lines_are_named_in_the_error():
    with pytest.raises(ValueError, match=r"line 2: no '_'.*'3\+4'"):
        parse_pairs(["1+2_3", "3+4", "5+6_11"])
    with pytest.raises(ValueError, match=r"line 3: .* 4 and 2 characters wide, but line "
                                         r"1's are 3 and 2"):
        parse_pairs(["1+2_3", "2+2_4", "10+1_11"[:4] + "_9"])
    with pytest.raises(ValueError, match=r"line 2: .* 3 and 3 .* 3 and 2"):
        parse_pairs(["1+2_3", "9+9_18"], source="sums.txt")
    with pytest.raises(ValueError, match="no examples"):
        parse_pairs([])
    with pytest.raises(ValueError, match="question before '_' is empty"):
        parse_pairs(["_1", "_2"])
    with pytest.raises(ValueError, match="cannot be split"):
        sequence_pairs(["1+2_3", "2+2_4"])  # 10 % of 2 is no test example
    with pytest.raises(ValueError, match="test_fraction"):
        sequence_pairs(["1+2_3"] * 20, test_fraction=1.5)


def test_answers_keep_the_start_symbol_and_the_vocabulary_is_in_order_of_appearance():
    questions, answers = parse_pairs(["12+3_15 \r\n", "4+50_54 "])
    assert questions == ["12+3", "4+50"] and answers == ["_15 ", "_54 "]
    data = sequence_pairs(["12+3_15 ", "4+50_54 "] * 10, test_fraction=0.1)
    assert data.vocabulary.id_to_word == ["1", "2", "+", "3", "_", "5", " ", "4", "0"]
    assert data.start_id == 4 and START == "_"


def test_addition_lines_have_the_books_widths_statistics_and_no_repeats():
    assert addition_lines(100, seed=3) == addition_lines(100, seed=3) != \
        addition_lines(100, seed=4)
    lines = addition_lines(seed=3)  # 50,000, as the book's file
    questions, answers = parse_pairs(lines)  # every width agrees
    assert len(questions[0]) == 7 and len(answers[0]) == 5
    pairs = set()
    for q, a in zip(questions, answers):
        x, y = map(int, q.split("+"))
        assert int(a[1:]) == x + y and 0 <= x < 1000 and 0 <= y < 1000
        pairs.add((min(x, y), max(x, y)))
    assert len(pairs) == 50_000  # each unordered pair once
    lengths = np.array([len(q.strip().split("+")[0]) for q in questions])
    # as in the book's file: 9.7 % one-digit, 57.8 % three-digit first numbers
    assert 0.08 < np.mean(lengths == 1) < 0.12 and 0.55 < np.mean(lengths == 3) < 0.61
    tiny = addition_lines(55, digits=1)  # every sum of two one-digit numbers
    assert len(set(tiny)) == 55 and tiny[0][3] == "_" and len(tiny[0]) == 6
    with pytest.raises(ValueError, match="only 55 different sums"):
        addition_lines(56, digits=1)
    with pytest.raises(ValueError, match="digits"):
        addition_lines(10, digits=0)


def test_date_lines_are_correct_dates_in_every_format():
    lines = date_lines(3_000, seed=1)
    assert lines == date_lines(3_000, seed=1)
    questions, answers = parse_pairs(lines)
    assert len(questions[0]) == 29 and len(answers[0]) == 11
    seen = set()
    for q, a in zip(questions, answers):
        day = datetime.date.fromisoformat(a[1:])
        assert 1970 <= day.year <= 2017
        text = q.rstrip()
        if "/" in text:
            seen.add("numeric")
            assert text == f"{day.month}/{day.day}/{day.year % 100:02d}"
        elif "." in text:
            seen.add("dotted")
            assert text == day.strftime("%d.%m.%Y")
        else:
            month = day.strftime("%B")
            assert month[:3].lower() in text.lower() and str(day.year) in text
            if text.lower().startswith(day.strftime("%A").lower()):
                seen.add("weekday")
            elif text[0].isdigit():
                seen.add("day-first")
            elif month.lower() + " " in text.lower():
                seen.add("long")
            else:
                seen.add("short")
    assert seen == set(DATE_FORMATS)
    cases = [q for q in questions if q[0].isalpha()]
    assert any(q.isupper() for q in cases) and any(q.rstrip().islower() for q in cases)
    abbreviations = {datetime.date(2000, m, 1).strftime("%b").lower() for m in range(1, 13)}
    only = parse_pairs(date_lines(50, seed=0, formats=["short"]))[0]
    assert all(q.split()[0].lower() in abbreviations for q in only)
    with pytest.raises(ValueError, match="formats"):
        date_lines(5, formats=["roman"])
    with pytest.raises(ValueError, match="ambiguous"):
        date_lines(5, first_year=1900, last_year=2017)
