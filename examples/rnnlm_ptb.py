"""An LSTM language model learns English from the Penn Treebank, then writes some.

Read this file from top to bottom. It is chapter 6 of "Deep Learning from Scratch 2"
(the book's ``Rnnlm``), with backpropagation through time done by chainrule:

1. the text is one long stream of word ids (10,000 words, ``<eos>`` ending each
   sentence); ``BPTTLoader`` cuts it into 20 rows side by side and serves windows of
   35 words from every row, the targets being the same words shifted by one;
2. the model reads a window: each id becomes a vector (``Embedding``), the LSTM
   carries its hidden state h and cell c from word to word, and an affine layer scores
   all 10,000 candidates for the next word; the loss is the softmax cross-entropy;
3. ``loss.backward()`` runs back through the 35 steps of the window (backpropagation
   through time); the state carried into the next window is *detached*, so the
   gradient stops at the window's edge and memory stays flat;
4. gradients are clipped to a total norm of 0.25 (an LSTM's gradients can still
   explode), then SGD with lr 20 takes a step;
5. perplexity = exp(mean loss per word) measures the model: a uniform guess over the
   vocabulary scores 10,000; the book's model reaches about 136 after 4 epochs;
6. finally the model writes text: each next word is drawn from its softmax.

Run it: python examples/rnnlm_ptb.py [--data-dir DIR] [--epochs 4]  (DIR holds the
three PTB files; without it they are downloaded once; about 2 minutes an epoch on one
core).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

try:
    import chainrule
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import chainrule

import chainrule.functional as F
from chainrule import datasets, nn, optim
from chainrule.data import BPTTLoader
from chainrule.train import evaluate

# The book's settings.
BATCH_SIZE = 20      # rows of text read side by side
BPTT = 35            # words per window: how far back the gradient flows
WORD_VECTOR = 100    # embedding size
HIDDEN = 100         # LSTM units
LEARNING_RATE = 20.0
MAX_GRAD_NORM = 0.25
EPOCHS = 4


def main(data_dir: str | None = None, epochs: int = EPOCHS, max_words: int | None = None,
         prompt: str = "the meaning of life is", words: int = 30, seed: int = 0,
         print_every: int = 200) -> dict:
    """Train, report the test perplexity, write text; return the numbers.
    ``max_words`` keeps only the beginning of the training text (for quick tries)."""
    # 1. the text as ids, and the windows
    train_ids, vocabulary = datasets.ptb("train", data_dir=data_dir)
    test_ids, _ = datasets.ptb("test", data_dir=data_dir)
    if max_words is not None:
        train_ids = train_ids[:max_words]
    windows = BPTTLoader(train_ids, BATCH_SIZE, BPTT)
    print(f"chainrule {chainrule.__version__}: {len(train_ids):,} training words, "
          f"{len(vocabulary):,}-word vocabulary, {len(windows)} windows of "
          f"{BATCH_SIZE}×{BPTT} per epoch")

    # 2. the model: Embedding → LSTM → Linear, carrying its state between windows
    model = nn.RNNLM(len(vocabulary), embedding_dim=WORD_VECTOR, hidden_size=HIDDEN,
                     seed=seed)
    optimizer = optim.SGD(model.parameters(), lr=LEARNING_RATE)

    # 3-4. training
    started = time.perf_counter()
    perplexities = []
    for epoch in range(1, epochs + 1):
        model.reset_state()  # each row starts again at its beginning
        total, count = 0.0, 0
        for step, (inputs, targets) in enumerate(windows, start=1):
            logits = model(inputs)                       # (20, 35, 10000)
            loss = F.cross_entropy(logits, targets)      # mean over the 700 words
            optimizer.zero_grad()
            loss.backward()                              # back through 35 steps
            optim.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
            optimizer.step()
            total, count = total + loss.item() * targets.size, count + targets.size
            if step % print_every == 0:
                print(f"epoch {epoch}  window {step:4d}/{len(windows)}  perplexity "
                      f"{math.exp(total / count):8.2f}  "
                      f"{time.perf_counter() - started:5.0f} s", flush=True)
        perplexities.append(math.exp(total / count))
        print(f"epoch {epoch} done: training perplexity {perplexities[-1]:.2f}", flush=True)

    # 5. perplexity on text the model never saw (evaluate resets the state first)
    test = evaluate(model, BPTTLoader(test_ids, 10, BPTT), nn.CrossEntropyLoss(),
                    metrics=("perplexity",))
    print(f"test perplexity: {test['perplexity']:.2f} "
          f"({time.perf_counter() - started:.0f} s)")

    # 6. writing: the prompt, then one word at a time drawn from the softmax
    prompt_ids = vocabulary.encode(prompt.split())
    unknown = vocabulary.word_to_id[vocabulary.unk]
    new_ids = nn.generate(model, prompt_ids.tolist(), words, skip=[unknown], seed=seed)
    text = " ".join([prompt, *vocabulary.decode(new_ids)]).replace(" <eos>", ".\n")
    print(f"\n{text}")
    return {"train_perplexity": perplexities, "test_perplexity": test["perplexity"],
            "text": text}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None,
                        help="folder with the three PTB files (ptb.train.txt, ...; .gz or "
                             "not)  [default: $CHAINRULE_DATA or the cache; downloaded "
                             "once]")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--max-words", type=int, default=None,
                        help="train on the first N words only (quick tries)")
    parser.add_argument("--prompt", default="the meaning of life is")
    parser.add_argument("--words", type=int, default=30, help="words to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(args.data_dir, args.epochs, args.max_words, args.prompt, args.words, args.seed)
