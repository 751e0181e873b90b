"""word2vec (CBOW with negative sampling) learns word vectors from the Penn Treebank.

Read this file from top to bottom. It is chapter 4 of "Deep Learning from Scratch 2":

1. the text becomes one long array of word ids; every word is a *target*, the 5 words
   on each side of it its *context* (``nn.contexts_and_targets``);
2. CBOW averages the context words' vectors (rows of W_in) into h and asks, with a
   sigmoid, "is this the target word?" of the true target (answer yes) and of 5 words
   drawn at random with probability ∝ count^0.75 (answer no: *negative sampling*,
   ``nn.UnigramSampler``), instead of a softmax over all 10,000 words;
3. Adam (lr 0.001) updates both tables from the gradient of that loss, 100 targets a
   step, for 10 epochs;
4. the rows of W_in are the word vectors: words used in similar contexts get similar
   vectors (``nn.most_similar``), and differences of vectors carry relations such as
   singular → plural (``nn.analogy``: car : cars = child : ?).

Run it: python examples/word2vec_ptb.py [--data-dir DIR]  (DIR holds the three PTB
files; without it they are downloaded once; about 70 s an epoch single-threaded).
``--epochs 1`` for a quick try.
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

from chainrule import datasets, nn, optim
from chainrule.data import DataLoader, TensorDataset

# The book's settings.
WINDOW_SIZE = 5      # context words on each side of the target
HIDDEN_SIZE = 100    # length of a word vector
BATCH_SIZE = 100
NEGATIVES = 5        # negative words per target
LEARNING_RATE = 0.001
EPOCHS = 10

QUERIES = ["you", "year", "car", "toyota"]
# a : b = c : ?, and the answer the book hopes for (its CBOW gets the first three)
ANALOGIES = [("king", "man", "queen", "woman"), ("take", "took", "go", "went"),
             ("car", "cars", "child", "children"), ("good", "better", "bad", "worse")]


def main(data_dir: str | None = None, epochs: int = EPOCHS, model_name: str = "cbow",
         vectors_path: str | None = "w2v_vectors.npz", max_words: int | None = None,
         seed: int = 0, print_every: int = 1000) -> dict:
    """Train, save the word vectors (if ``vectors_path``), print the nearest words and
    the analogies; return them with the loss of each epoch. ``max_words`` keeps only the
    beginning of the text (for quick tries)."""
    ids, vocabulary = datasets.ptb("train", data_dir=data_dir)  # found, checked, cached
    words = vocabulary.id_to_word
    if max_words is not None:
        ids = ids[:max_words]
    vocab_size = len(words)

    # 1. contexts (N, 10) and targets (N,)
    contexts, targets = nn.contexts_and_targets(ids, WINDOW_SIZE)
    # 2. the model: W_in, W_out (10,000 × 100 each) and the sampler of negatives
    sampler = nn.UnigramSampler(ids, power=0.75, sample_size=NEGATIVES,
                                vocab_size=vocab_size, seed=seed)
    Model = {"cbow": nn.CBOW, "skipgram": nn.SkipGram}[model_name]
    model = Model(vocab_size, HIDDEN_SIZE, sampler, seed=seed)
    optimizer = optim.Adam(model.parameters(), lr=LEARNING_RATE)
    batches = DataLoader(TensorDataset(contexts, targets), batch_size=BATCH_SIZE,
                         shuffle=True, seed=seed)
    print(f"chainrule {chainrule.__version__}: {model_name}, {len(ids):,} words, "
          f"vocabulary {vocab_size:,}, {len(batches):,} iterations per epoch")

    # 3. training
    started = time.perf_counter()
    epoch_losses = []
    for epoch in range(1, epochs + 1):
        total, recent = 0.0, []
        for step, (context_batch, target_batch) in enumerate(batches, start=1):
            loss = model(context_batch, target_batch)   # negatives drawn inside
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            recent.append(loss.item())
            if step % print_every == 0:
                print(f"epoch {epoch:2d}  iteration {step:5d}/{len(batches)}  loss "
                      f"{np.mean(recent):.3f}  {time.perf_counter() - started:6.0f} s",
                      flush=True)
                total, recent = total + sum(recent), []
        total += sum(recent)
        epoch_losses.append(total / len(batches))
        elapsed = time.perf_counter() - started
        print(f"epoch {epoch:2d} done: mean loss {epoch_losses[-1]:.3f}, {elapsed:.0f} s "
              f"({elapsed / (epoch * len(batches)) * 1000:.1f} ms an iteration)", flush=True)

    if vectors_path:
        np.savez(vectors_path, word_vectors=model.word_vectors, words=np.array(words))
        print(f"saved the word vectors to {vectors_path}")

    # 4. what the vectors learnt
    vectors = model.word_vectors
    nearest = {}
    for query in QUERIES:
        nearest[query] = nn.most_similar(query, vectors, words, top=5)
        print(f"\n[query] {query}")
        for word, similarity in nearest[query]:
            print(f"  {word}: {similarity:.3f}")
    answers = {}
    print()
    for a, b, c, expected in ANALOGIES:
        answers[(a, b, c)] = found = nn.analogy(a, b, c, vectors, words, top=5)
        verdict = "right" if found[0][0] == expected else f"wrong (expected {expected})"
        listed = ", ".join(f"{word} {similarity:.3f}" for word, similarity in found)
        print(f"[analogy] {a} : {b} = {c} : ?  ->  {listed}   [{verdict}]")
    return {"epoch_losses": epoch_losses, "most_similar": nearest, "analogy": answers}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None,
                        help="folder with the three PTB files (ptb.train.txt, ...; .gz or "
                             "not)  [default: $CHAINRULE_DATA or the cache; downloaded "
                             "once]")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--model", choices=["cbow", "skipgram"], default="cbow")
    parser.add_argument("--save", default="w2v_vectors.npz",
                        help="where to save the word vectors (.npz)")
    parser.add_argument("--max-words", type=int, default=None,
                        help="train on the first N words only (quick tries)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(args.data_dir, args.epochs, args.model, args.save, args.max_words, args.seed)
