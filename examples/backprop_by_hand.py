"""Backpropagation by hand: the four equations in plain NumPy, checked against chainrule.

Read this file from top to bottom. We build a small network with sigmoid activations
and the squared-error cost, compute every gradient ourselves with the four equations of
backpropagation, and then compare them with what chainrule's automatic
differentiation computes. They agree to about 1e-15: autodiff is these equations,
applied mechanically, node by node.

Notation (as in Michael Nielsen's "Neural Networks and Deep Learning"):
    zˡ = weighted input of layer l,  aˡ = σ(zˡ) its activation,  a⁰ = the input x,
    C  = ½·Σ (aᴸ - y)²  (the sum-of-squares error),  δˡ = ∂C/∂zˡ  (the layer's "error").

The four equations:
    (BP1)  δᴸ = ∇ₐC ⊙ σ′(zᴸ)                 the error of the output layer
    (BP2)  δˡ = ((Wˡ⁺¹)ᵀ δˡ⁺¹) ⊙ σ′(zˡ)        the error moves one layer back
    (BP3)  ∂C/∂bˡ = δˡ                        the gradient of the biases
    (BP4)  ∂C/∂Wˡ = δˡ (aˡ⁻¹)ᵀ                 the gradient of the weights

One difference in layout: Nielsen writes column vectors and z = W·a + b, with W of
shape (out, in). chainrule (like the textbook "Deep Learning from Scratch") puts the
samples in *rows* of a batch and computes z = a·W + b, with W of shape (in, out), the
transpose of Nielsen's. So below, every equation appears transposed:
    (BP2)  δˡ = (δˡ⁺¹ · (Wˡ⁺¹)ᵀ) ⊙ σ′(zˡ)      (rows are samples)
    (BP3)  ∂C/∂bˡ = Σ over the batch of δˡ
    (BP4)  ∂C/∂Wˡ = (aˡ⁻¹)ᵀ · δˡ               shape (in, out), like W; the matrix product
                                               also sums over the samples of the batch.

Run it: python examples/backprop_by_hand.py  (takes well under a second).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

try:
    from chainrule import nn
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from chainrule import nn


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z: np.ndarray) -> np.ndarray:
    # σ′(z) = σ(z)·(1 - σ(z)): the derivative of the sigmoid is built from its value
    s = sigmoid(z)
    return s * (1.0 - s)


def gradients_by_hand(weights: list[np.ndarray], biases: list[np.ndarray], x: np.ndarray,
                      y: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """∂C/∂W and ∂C/∂b of every layer, for C = ½·Σ(aᴸ - y)² over the whole batch."""
    # ---- forward pass: remember every z and a, the backward pass needs them
    activations = [x]  # a⁰ = x
    zs = []
    for W, b in zip(weights, biases):
        z = activations[-1] @ W + b  # z = a·W + b  (rows are samples)
        zs.append(z)
        activations.append(sigmoid(z))

    # ---- (BP1) the output layer's error
    # C = ½·Σ(a - y)², so ∇ₐC = a - y
    grad_a = activations[-1] - y
    delta = grad_a * sigmoid_prime(zs[-1])

    grad_W = [np.empty(0)] * len(weights)
    grad_b = [np.empty(0)] * len(biases)
    for layer in reversed(range(len(weights))):
        # ---- (BP3) and (BP4) for this layer, from its error δ and its input aˡ⁻¹
        grad_b[layer] = delta.sum(axis=0)  # one bias per output, summed over samples
        grad_W[layer] = activations[layer].T @ delta  # (in, batch)·(batch, out) = (in, out)
        if layer > 0:
            # ---- (BP2) move the error one layer back: through the weights (transposed,
            # because the signal now flows from outputs to inputs), then through σ′
            delta = (delta @ weights[layer].T) * sigmoid_prime(zs[layer - 1])
    return grad_W, grad_b


def compare(seed: int = 0) -> float:
    """The largest difference between the by-hand gradients and chainrule's."""
    rng = np.random.default_rng(seed)
    # float64 so that the only differences left are rounding (about 1e-16)
    model = nn.MLP([3, 5, 4, 2], activations=["sigmoid", "sigmoid", "sigmoid"],
                   seed=seed).double()
    x = rng.standard_normal((6, 3))  # a batch of 6 samples with 3 features
    y = rng.uniform(size=(6, 2))  # targets in (0, 1), the range of a sigmoid

    # chainrule: the same cost, ½·Σ(y - t)², and one call to backward()
    cost = nn.SumSquaredError()(model(x), y)
    cost.backward()

    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    weights = [layer.weight.data for layer in linears]
    biases = [layer.bias.data for layer in linears]
    grad_W, grad_b = gradients_by_hand(weights, biases, x, y)

    differences = []
    for layer, gW, gb in zip(linears, grad_W, grad_b):
        differences.append(np.abs(layer.weight.grad.data - gW).max())
        differences.append(np.abs(layer.bias.grad.data - gb).max())
    return float(max(differences))


if __name__ == "__main__":
    difference = compare()
    print(f"max |by hand - chainrule| over all weights and biases: {difference:.3g}")
    print("agree" if difference < 1e-10 else "DISAGREE")
