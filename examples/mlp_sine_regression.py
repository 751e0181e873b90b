"""Regression: a multi-layer perceptron learns the curve y = sin(x) from noisy samples.

Read this file from top to bottom. For regression the network's output is a number, not
a class, so two things change compared with classification:

* the output layer has the identity activation ("linear"): y = h·W + b, any real value;
* the loss is the squared error E = ½·Σ (y - t)², whose gradient at the output is
  simply ∂E/∂y = y - t (identity output and squared error pair as neatly as softmax
  and cross-entropy do).

The hidden layers use tanh: smooth, so the fitted curve is smooth too.

Run it: python examples/mlp_sine_regression.py [--plot sine_fit.png]  (a few seconds).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

try:
    import chainrule
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import chainrule

from chainrule import nn, no_grad, optim
from chainrule.datasets import sine


def main(iterations: int = 2000, lr: float = 0.01, samples: int = 200, seed: int = 0,
         plot: str | None = None) -> float:
    """Fit the sine curve; returns the mean squared error against the true sin(x)."""
    # 200 points x in [-π, π] with y = sin(x) + noise of standard deviation 0.1.
    x, t = sine(n=samples, noise=0.1, seed=seed)

    # 1 input → 32 tanh → 32 tanh → 1 output with the identity activation.
    model = nn.MLP([1, 32, 32, 1], activations=["tanh", "tanh", "linear"], seed=seed)
    loss_fn = nn.SumSquaredError()       # E = ½·Σ (y - t)²
    optimizer = optim.Adam(model.parameters(), lr=lr)
    print(f"chainrule {chainrule.__version__}: fitting sin(x) with "
          f"{model.num_parameters():,} parameters, Adam lr {lr}, {iterations} iterations")

    for iteration in range(1, iterations + 1):
        y = model(x)                      # forward: all samples at once (full batch)
        loss = loss_fn(y, t)
        optimizer.zero_grad()
        loss.backward()                   # the output layer receives y - t, and so on back
        optimizer.step()
        if iteration == 1 or iteration % max(1, iterations // 5) == 0:
            print(f"  iteration {iteration:>5}: mean squared error "
                  f"{2 * loss.item() / len(x):.4f}")

    # How close is the curve to the truth? Compare with sin(x) itself, without noise.
    with no_grad():
        fitted = model(x).data
    error = float(np.mean((fitted - np.sin(x)) ** 2))
    print(f"mean squared distance from the true sin(x): {error:.4f} "
          f"(the noise alone has variance {0.1 ** 2:.4f})")
    if plot:
        save_plot(x, t, fitted, Path(plot))
        print(f"wrote {plot}")
    return error


def save_plot(x: np.ndarray, t: np.ndarray, fitted: np.ndarray, path: Path) -> None:
    """The samples, the true curve and the network's curve, in one picture."""
    import matplotlib

    matplotlib.use("Agg")  # write a file, never open a window
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(x, t, s=8, color="0.6", label="noisy samples")
    ax.plot(x, np.sin(x), color="tab:green", label="sin(x)")
    ax.plot(x, fitted, color="tab:red", linestyle="--", label="network")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", metavar="PATH", help="save a picture of the fit (.png)")
    args = parser.parse_args()
    main(iterations=args.iterations, lr=args.lr, seed=args.seed, plot=args.plot)
