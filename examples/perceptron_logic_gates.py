"""A single-layer perceptron learns logic gates, fails on XOR, and a hidden layer fixes it.

Read this file from top to bottom. The perceptron is one sigmoid neuron with two inputs:

    z = x·Wᵀ + b,   y = σ(z),   E = ½·Σ (y - t)²      (squared error over the 4 inputs)

Its gradient, for all four input pairs at once (X holds them in rows, one row each):

    dZ = ∂E/∂z = (y - t) ⊙ σ′(z) = (y - t) ⊙ y ⊙ (1 - y)      shape (4, 1)
    dW = dZᵀ·X          shape (1, 2): the matrix product sums over the four samples
    db = Σ dZ           over the samples

First we write that by hand in NumPy, then let chainrule's automatic differentiation
compute the same gradient from the forward pass alone; the two runs end with the same
weights. One neuron draws one straight line through the input square, so it learns
AND, OR and NAND, but not XOR, whose two classes no line separates. A hidden layer
bends the boundary and solves it.

Here W has shape (outputs, inputs) = (1, 2), as in most maths texts. chainrule's
``nn.Linear`` stores the transpose, (inputs, outputs), and computes x·W + b; its
gradient is then Xᵀ·dZ, the same numbers transposed.

Run it: python examples/perceptron_logic_gates.py  (a second or two).
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

import chainrule.functional as F
from chainrule import Tensor, nn, no_grad, optim
from chainrule.datasets import logic_gate


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def initial_weights(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Small random weights and a zero bias; both trainings start from these."""
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 0.5, size=(1, 2)), np.zeros(1)


# ---- 1. the perceptron trained with the gradient written by hand ------------------------
def train_by_hand(X: np.ndarray, t: np.ndarray, epochs: int, lr: float,
                  seed: int) -> tuple[np.ndarray, np.ndarray]:
    W, b = initial_weights(seed)
    for _ in range(epochs):
        z = X @ W.T + b                  # (4, 1): one weighted sum per input pair
        y = sigmoid(z)
        dZ = (y - t) * y * (1.0 - y)     # ∂E/∂z: the error times σ′(z) = y(1 - y)
        dW = dZ.T @ X                    # (1, 2), summed over the four samples
        db = dZ.sum(axis=0)              # (1,)
        W -= lr * dW                     # gradient descent: a step downhill
        b -= lr * db
    return W, b


# ---- 2. the same perceptron, with the gradient computed by chainrule ---------------------
def train_with_autograd(X: np.ndarray, t: np.ndarray, epochs: int, lr: float,
                        seed: int) -> tuple[np.ndarray, np.ndarray]:
    W0, b0 = initial_weights(seed)
    W = Tensor(W0, requires_grad=True)   # float64 like the NumPy version
    b = Tensor(b0, requires_grad=True)
    x = Tensor(X.astype(np.float64))
    for _ in range(epochs):
        y = F.sigmoid(x @ W.T + b)       # only the forward pass is written...
        loss = 0.5 * ((y - t) ** 2).sum()
        W.grad = b.grad = None
        loss.backward()                  # ...backpropagation finds dE/dW and dE/db
        with no_grad():                  # the update itself is not part of the graph
            W.data -= lr * W.grad.data
            b.data -= lr * b.grad.data
    return W.data, b.data


def predict(W: np.ndarray, b: np.ndarray, X: np.ndarray) -> np.ndarray:
    return (sigmoid(X @ W.T + b) > 0.5).astype(int).ravel()


def show(name: str, X: np.ndarray, t: np.ndarray, predicted: np.ndarray) -> float:
    """Print the truth table with the predictions; return the accuracy."""
    accuracy = float(np.mean(predicted == t.ravel()))
    verdict = "learned" if accuracy == 1.0 else f"FAILED ({accuracy:.0%} right)"
    rows = ", ".join(f"{int(a)}{int(c)}→{p}" for (a, c), p in zip(X, predicted))
    print(f"  {name:<5} {rows}   {verdict}")
    return accuracy


# ---- 3. XOR with one hidden layer -------------------------------------------------------
def train_xor_with_hidden_layer(epochs: int, lr: float, hidden: int, seed: int
                                ) -> np.ndarray:
    """A 2-hidden-1 network of sigmoid neurons, squared error, full-batch gradient
    descent; returns its 0/1 predictions for the four inputs."""
    X, t = logic_gate("xor")
    model = nn.MLP([2, hidden, 1], activations=["sigmoid", "sigmoid"], seed=seed)
    loss_fn = nn.SumSquaredError()           # E = ½·Σ (y - t)², as above
    optimizer = optim.SGD(model.parameters(), lr=lr)
    for _ in range(epochs):
        loss = loss_fn(model(X), t)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with no_grad():
        return (model(X).data > 0.5).astype(int).ravel()


def main(epochs: int = 1000, lr: float = 1.0, hidden_epochs: int = 2000,
         hidden: int = 4, seed: int = 0) -> dict[str, float]:
    """Train every gate both ways and XOR with a hidden layer; returns the accuracies
    (keys like "AND", "XOR", "XOR hidden") and the largest difference between the
    weights learnt by hand and by autograd ("max weight difference")."""
    print(f"chainrule {chainrule.__version__}: a single sigmoid neuron, {epochs} epochs "
          f"of gradient descent (lr {lr})\n")
    results: dict[str, float] = {}
    difference = 0.0
    print("single-layer perceptron, gradient by hand (input pair → output):")
    learnt = {}
    for gate in ("and", "or", "nand", "xor"):
        X, t = logic_gate(gate)
        W, b = train_by_hand(X.astype(np.float64), t, epochs, lr, seed)
        learnt[gate] = (W, b)
        results[gate.upper()] = show(gate.upper(), X, t, predict(W, b, X))

    print("\nthe same with chainrule autograd:")
    for gate in ("and", "or", "nand", "xor"):
        X, t = logic_gate(gate)
        W, b = train_with_autograd(X, t, epochs, lr, seed)
        show(gate.upper(), X, t, predict(W, b, X))
        hand_W, hand_b = learnt[gate]
        difference = max(difference, float(np.abs(W - hand_W).max()),
                         float(np.abs(b - hand_b).max()))
    print(f"\nlargest difference between the weights learnt by hand and by autograd: "
          f"{difference:.1e}")
    results["max weight difference"] = difference

    print("\nXOR is not linearly separable: one neuron cannot learn it. With a hidden "
          f"layer of {hidden} neurons:")
    X, t = logic_gate("xor")
    predicted = train_xor_with_hidden_layer(hidden_epochs, lr=2.0, hidden=hidden, seed=seed)
    results["XOR hidden"] = show("XOR", X, t, predicted)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1000,
                        help="gradient-descent steps for each gate (default 1000)")
    parser.add_argument("--lr", type=float, default=1.0, help="learning rate (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(epochs=args.epochs, lr=args.lr, hidden_epochs=2 * args.epochs, seed=args.seed)
