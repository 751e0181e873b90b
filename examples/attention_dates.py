"""A sequence-to-sequence model with attention learns to write dates in ISO form, and
shows where it looked.

Read this file from top to bottom. It is chapter 8 of "Deep Learning from Scratch 2"
(the book's ``AttentionSeq2seq`` on its ``date.txt``), done with chainrule:

1. the data: 50,000 dates written many ways ("september 27, 1994", "9/27/94",
   "TUESDAY, SEPTEMBER 27, 1994", ...), each with its ISO form ("_1994-09-27", the
   leading "_" being the decoder's start symbol), padded with spaces to fixed widths;
   every character is a token; 90 % train, 10 % test, split as the book does. The
   questions are read back to front, as the book does;
2. the model: an encoder LSTM reads the question and keeps its hidden state at every
   character; a decoder LSTM writes the answer one character after another, starting
   from the encoder's last state; at every output step, attention scores each input
   character by the dot product of its state with the decoder's, turns the scores into
   weights with a softmax, and hands the weighted sum of the encoder's states (the
   context) with the decoder's state to the output layer;
3. training (teacher forcing): the decoder reads the true answer shifted by one
   (answer[:, :-1]) and is scored against the next characters (answer[:, 1:]) with
   cross-entropy; Adam, gradients clipped to norm 5;
4. testing: the decoder answers greedily, feeding its own outputs back; an answer
   counts only if every character is right (the book reaches 99.9 % after 3 epochs);
5. the picture: the attention weights for one date, rows the output characters,
   columns the input characters: the year's digits look at the year, the month's at
   the month's name.

Run it: python examples/attention_dates.py [--data-file date.txt] [--epochs 3]
(without --data-file the dates are generated; about a minute an epoch on one core).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

try:
    import chainrule
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import chainrule

import chainrule.functional as F
from chainrule import datasets, nn, optim, plot

# The book's settings (ch08/train.py); it trains for 10 epochs, 3 are enough.
WORDVEC = 16
HIDDEN = 256
BATCH_SIZE = 128
LEARNING_RATE = 0.001
MAX_GRAD_NORM = 5.0
EPOCHS = 3
EXAMPLE = "september 27, 1994"
PICTURE = "attention_dates.png"


def exact_match(model: nn.AttentionSeq2Seq, questions: np.ndarray, answers: np.ndarray,
                start_id: int) -> tuple[float, np.ndarray]:
    """The share of questions whose greedy answer is right in every character."""
    guesses = np.concatenate([model.generate(questions[i:i + 1000], start_id,
                                             answers.shape[1] - 1)
                              for i in range(0, len(questions), 1000)])
    return float((guesses == answers[:, 1:]).all(axis=1).mean()), guesses


def main(data_file: str | None = None, epochs: int = EPOCHS,
         train_examples: int | None = None, hidden: int = HIDDEN, example: str = EXAMPLE,
         picture: str = PICTURE, seed: int = 0) -> dict:
    """Train, report the test accuracy, draw the attention for ``example``; return the
    numbers. ``train_examples`` keeps only the first training dates (quick tries)."""
    # 1. the data, questions reversed
    if data_file is not None:
        data = datasets.load_sequence_pairs(data_file)
    else:
        data = datasets.sequence_pairs(datasets.date_lines(50_000, seed=seed))
    x_train, t_train = data.x_train[:train_examples, ::-1], data.t_train[:train_examples]
    x_test, t_test = data.x_test[:, ::-1], data.t_test
    print(f"chainrule {chainrule.__version__}: {len(x_train):,} training and "
          f"{len(x_test):,} test dates from {data_file or 'the generator'}, "
          f"{len(data.vocabulary)} characters; e.g. {data.decode(data.x_test[0])!r} -> "
          f"{data.decode(data.t_test[0])!r}")

    # 2. the model
    model = nn.AttentionSeq2Seq(len(data.vocabulary), WORDVEC, hidden, seed=seed)
    optimizer = optim.Adam(model.parameters(), lr=LEARNING_RATE)
    rng = np.random.default_rng(seed)

    # 3-4. training, and the test after every epoch
    started = time.perf_counter()
    accuracy = 0.0
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x_train))
        total = 0.0
        for first in range(0, len(order), BATCH_SIZE):
            rows = order[first:first + BATCH_SIZE]
            questions, answers = x_train[rows], t_train[rows]
            logits = model(questions, answers[:, :-1])          # (N, 10, V)
            loss = F.cross_entropy(logits, answers[:, 1:])      # mean over N·10 characters
            optimizer.zero_grad()
            loss.backward()
            optim.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
            optimizer.step()
            total += loss.item() * len(rows)
        accuracy, guesses = exact_match(model, x_test, t_test, data.start_id)
        print(f"epoch {epoch}: loss {total / len(order):.4f}, test exact-match accuracy "
              f"{accuracy:.4f} ({time.perf_counter() - started:.0f} s)", flush=True)
        for q, t, g in zip(x_test[:3], t_test[:3], guesses[:3]):
            mark = "O" if (g == t[1:]).all() else "X"
            print(f"  {data.decode(q[::-1]).rstrip():29s} {data.decode(t[1:])} {mark} "
                  f"{data.decode(g)}")

    # 5. the attention for one date, drawn with the input the right way round
    width = data.x_test.shape[1]
    if len(example) > width:
        raise ValueError(f"the example {example!r} is longer than the {width} characters "
                         "of a question")
    question = data.vocabulary.encode(list(example.ljust(width)))
    answer = model.generate(question[None, ::-1], data.start_id, t_test.shape[1] - 1)
    written = data.decode(answer[0])
    weights = model.attention_weights[0][:, ::-1]               # columns back in order
    path = plot.attention(weights, example.ljust(width), written, picture,
                          title=f"{example!r} → {written}")
    print(f"{example!r} -> {written!r}; attention drawn in {path}")
    return {"test_accuracy": accuracy, "answer": written, "picture": path,
            "seconds": time.perf_counter() - started}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-file", default=None,
                        help="dates in the book's format, e.g. its date.txt  [default: "
                             "50,000 generated]")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--train-examples", type=int, default=None,
                        help="train on the first N dates only (quick tries)")
    parser.add_argument("--example", default=EXAMPLE, help="the date to draw")
    parser.add_argument("--picture", default=PICTURE, help="where to save the drawing")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(args.data_file, args.epochs, args.train_examples, HIDDEN, args.example,
         args.picture, args.seed)
