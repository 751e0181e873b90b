"""Seconds per MNIST epoch: chainrule's ``fit`` versus PyTorch eager versus NumPy by hand.

60,000 images, batch 100, plain SGD (lr 0.1), ReLU MLPs 784-50-10 and 784-256-256-10,
float32, all three in one process, median of ``--repeats`` epochs each, printed with
ratios. Loading MNIST is not timed. PyTorch gets as many threads as NumPy's BLAS. One
warm-up epoch each, then rounds of one epoch of each in a shuffled order.

    python benchmarks/bench_mlp.py [--data-dir ../shared/data/mnist] [--repeats 3]

Without MNIST files, random data of MNIST's shape is used (the timing is the same).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from chainrule import nn, optim  # noqa: E402
from chainrule.data import DataLoader, TensorDataset  # noqa: E402
from chainrule.train import fit  # noqa: E402

BATCH, LR = 100, 0.1


def load(data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    if data_dir:
        from chainrule.datasets import mnist

        return mnist("train", data_dir=data_dir)
    rng = np.random.default_rng(0)
    return rng.random((60000, 784), dtype=np.float32), rng.integers(0, 10, 60000)


def epoch_chainrule(sizes, x, y):
    model = nn.MLP(sizes, activations="relu", seed=0)
    opt = optim.SGD(model.parameters(), lr=LR)
    loader = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True, seed=0)
    loss = nn.CrossEntropyLoss()

    def epoch() -> None:
        fit(model, loss, opt, loader, epochs=1, metrics=(), progress=False)

    return epoch


def epoch_torch(torch, sizes, x, y):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    rng = np.random.default_rng(0)

    def epoch() -> None:
        order = torch.from_numpy(rng.permutation(len(x)))
        for i in range(0, len(x), BATCH):
            idx = order[i:i + BATCH]
            loss = loss_fn(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()

    return epoch


def epoch_numpy(sizes, x, y):
    """The fused loop a careful person writes by hand: no graph, no objects."""
    rng = np.random.default_rng(0)
    weights = [(rng.standard_normal((a, b)) * np.sqrt(2.0 / a)).astype(np.float32)
               for a, b in zip(sizes[:-1], sizes[1:])]
    biases = [np.zeros(b, dtype=np.float32) for b in sizes[1:]]

    def epoch() -> None:
        order = rng.permutation(len(x))
        for i in range(0, len(x), BATCH):
            idx = order[i:i + BATCH]
            xb, tb = x[idx], y[idx]
            activations = [xb]
            for w, b in zip(weights[:-1], biases[:-1]):
                activations.append(np.maximum(activations[-1] @ w + b, 0))
            logits = activations[-1] @ weights[-1] + biases[-1]
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(len(tb)), tb] -= 1
            delta = p * (1.0 / len(tb))
            for layer in range(len(weights) - 1, -1, -1):
                a = activations[layer]
                gw = a.T @ delta
                gb = delta.sum(axis=0)
                if layer > 0:  # the input images need no gradient
                    delta = (delta @ weights[layer].T) * (a > 0)
                weights[layer] -= LR * gw
                biases[layer] -= LR * gb

    return epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    x, y = load(args.data_dir)
    try:
        import torch
        from threadpoolctl import threadpool_info

        threads = max((p["num_threads"] for p in threadpool_info()
                       if p.get("user_api") == "blas"), default=1)
        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    print(f"seconds per epoch (60,000 images, batch {BATCH}, SGD), median of "
          f"{args.repeats}" + (f"; torch threads {torch.get_num_threads()}" if torch else ""))
    print(f"{'network':18}{'chainrule':>11}{'pytorch':>10}{'numpy':>9}"
          f"{'cr/torch':>10}{'cr/numpy':>10}")
    for sizes in ([784, 50, 10], [784, 256, 256, 10]):
        epochs = {"chainrule": epoch_chainrule(sizes, x, y), "numpy": epoch_numpy(sizes, x, y)}
        if torch is not None:
            epochs["pytorch"] = epoch_torch(torch, sizes, x, y)
        medians = time_rounds(epochs, args.repeats)
        cr_time, np_time = medians["chainrule"], medians["numpy"]
        th_time = medians.get("pytorch", float("nan"))
        name = "-".join(map(str, sizes))
        print(f"{name:18}{cr_time:11.3f}{th_time:10.3f}{np_time:9.3f}"
              f"{cr_time / th_time:10.2f}{cr_time / np_time:10.2f}")


def time_rounds(epochs: dict, repeats: int) -> dict[str, float]:
    """Median seconds per epoch. Each round runs one epoch of each, in a shuffled order,
    so that a machine that gets busier or quieter affects all three alike."""
    for epoch in epochs.values():  # warm-up (allocations, caches, lazy imports)
        epoch()
    samples: dict[str, list[float]] = {name: [] for name in epochs}
    order = list(epochs.items())
    shuffler = random.Random(0)
    for _ in range(repeats):
        shuffler.shuffle(order)
        for name, epoch in order:
            start = time.perf_counter()
            epoch()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in samples.items()}


if __name__ == "__main__":
    main()
