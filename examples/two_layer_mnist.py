"""The textbook's two-layer network learns MNIST: 784 → 50 ReLU → 10, SGD lr 0.1.

Read this file from top to bottom. It is the training loop of "Deep Learning from
Scratch" (chapter 5), with backpropagation done by chainrule:

1. draw a mini-batch of 100 images;
2. forward pass and loss (softmax with cross-entropy), then ``loss.backward()`` fills
   the gradient of every weight;
3. update each weight a small step against its gradient (SGD, lr 0.1);
4. repeat; after every epoch (one pass over the training set) measure the accuracy on
   the training and the test images: if they drift apart, the network overfits.

(``chainrule.train.fit`` runs the same loop with progress bars and checkpoints.)

MNIST is read from --data-dir, $CHAINRULE_DATA or the cache, and downloaded once if it
is in none of them (unless --no-download). Without it, the script says so and trains on
scikit-learn's small 8x8 digits instead.

Run it: python examples/two_layer_mnist.py --epochs 5  (about a second per epoch).
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
from chainrule.train import accuracy, predict


def load(data_dir: str | None, download: bool, seed: int
         ) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST if it can be had, else the 8x8 digits: (name, x_train, t_train, x_test, t_test)."""
    try:
        x_train, t_train = datasets.mnist("train", data_dir=data_dir, download=download)
        x_test, t_test = datasets.mnist("test", data_dir=data_dir, download=download)
        return "MNIST", x_train, t_train, x_test, t_test
    except datasets.DatasetNotFoundError as error:
        first_line = str(error).splitlines()[0]
        print(f"MNIST is not available ({first_line})\n"
              "-> training on scikit-learn's 8x8 digits instead (64 inputs, not 784).\n")
        x_train, t_train = datasets.digits("train", seed=seed)
        x_test, t_test = datasets.digits("test", seed=seed)
        return "digits", x_train, t_train, x_test, t_test


def main(epochs: int = 17, data_dir: str | None = None, download: bool = True,
         train_samples: int | None = None, seed: int = 0) -> float:
    """Train and return the final test accuracy. ``train_samples`` keeps only the first
    N training images (for quick tries)."""
    name, x_train, t_train, x_test, t_test = load(data_dir, download, seed)
    if train_samples is not None:
        x_train, t_train = x_train[:train_samples], t_train[:train_samples]

    # 784 inputs (28x28 pixels) → 50 hidden ReLU units → 10 scores, one per digit;
    # weights drawn with std 0.01 as in the textbook.
    network = nn.TwoLayerNet(input_size=x_train.shape[1], hidden_size=50, output_size=10,
                             weight_init_std=0.01, seed=seed)
    optimizer = optim.SGD(network.parameters(), lr=0.1)
    batches = DataLoader(TensorDataset(x_train, t_train), batch_size=100, shuffle=True,
                         seed=seed)
    print(f"chainrule {chainrule.__version__}: {name}, {len(x_train):,} training and "
          f"{len(x_test):,} test images; {network.num_parameters():,} weights; "
          f"{len(batches)} iterations per epoch")

    started = time.perf_counter()
    test_accuracy = 0.0
    for epoch in range(1, epochs + 1):
        for x_batch, t_batch in batches:           # 1. a mini-batch
            loss = network.loss(x_batch, t_batch)  # 2. forward and loss...
            optimizer.zero_grad()
            loss.backward()                        #    ...and every gradient
            optimizer.step()                       # 3. W ← W - lr·∂L/∂W
        train_accuracy = accuracy(predict(network, x_train), t_train)
        test_accuracy = accuracy(predict(network, x_test), t_test)
        print(f"epoch {epoch:>2}: loss {loss.item():.4f}  train accuracy "
              f"{train_accuracy:.4f}  test accuracy {test_accuracy:.4f}  "
              f"({time.perf_counter() - started:.1f} s)")
    return test_accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=17,
                        help="passes over the training set (default 17, the textbook's "
                             "10,000 iterations)")
    parser.add_argument("--data-dir", help="folder with the four MNIST files")
    parser.add_argument("--no-download", action="store_true",
                        help="never download MNIST (fall back to the 8x8 digits)")
    parser.add_argument("--train-samples", type=int, default=None,
                        help="use only the first N training images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(epochs=args.epochs, data_dir=args.data_dir, download=not args.no_download,
         train_samples=args.train_samples, seed=args.seed)
