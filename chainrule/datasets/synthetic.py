"""Tiny generated datasets for first experiments: logic gates, spirals and a sine wave."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["logic_gate", "spiral", "sine", "LOGIC_GATES"]

#: Truth tables for inputs (0,0), (0,1), (1,0), (1,1).
LOGIC_GATES = {
    "and": (0, 0, 0, 1),
    "or": (0, 1, 1, 1),
    "nand": (1, 1, 1, 0),
    "xor": (0, 1, 1, 0),
}


def _check(name: str, value: object, minimum: float, integer: bool) -> None:
    """Raise ValueError unless ``value`` is a number (an integer if asked) >= minimum."""
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or value < minimum:
        what = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {what} >= {minimum}, got {value!r}")


def logic_gate(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The four input pairs of a logic gate and its outputs.

    ``name`` is 'and', 'or', 'nand' or 'xor' (any case). Returns ``X`` float32 (4, 2)
    and ``y`` float32 (4, 1). XOR is the classic problem a single neuron cannot solve.
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in LOGIC_GATES:
        raise ValueError(f"unknown logic gate {name!r}; valid names: {', '.join(LOGIC_GATES)}")
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array(LOGIC_GATES[key], dtype=np.float32).reshape(4, 1)
    return X, y


def spiral(n_per_class: int = 100, classes: int = 3, seed: int = 0, noise: float = 0.2
           ) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved spiral arms, one per class (the CS231n toy problem).

    Points of class ``k`` lie at radius r from 0 to 1 and angle ``4k + 4r`` radians plus
    Gaussian noise of standard deviation ``noise``: not linearly separable.
    Returns ``X`` float32 (n_per_class * classes, 2) and ``y`` int64 labels.
    """
    _check("n_per_class", n_per_class, 1, integer=True)
    _check("classes", classes, 1, integer=True)
    _check("noise", noise, 0, integer=False)
    rng = np.random.default_rng(seed)
    radius = np.tile(np.linspace(0.0, 1.0, n_per_class), classes)
    y = np.repeat(np.arange(classes, dtype=np.int64), n_per_class)
    # Each arm sweeps 4 radians, starting 4 radians after the previous one.
    theta = np.concatenate([np.linspace(4.0 * k, 4.0 * (k + 1), n_per_class)
                            for k in range(classes)])
    theta += rng.normal(0.0, noise, size=theta.shape)
    X = np.stack([radius * np.sin(theta), radius * np.cos(theta)], axis=1)
    return X.astype(np.float32), y


def sine(n: int = 200, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 1-D regression problem: ``y = sin(x) + noise`` for ``n`` evenly spaced x in [-pi, pi].

    Returns ``x`` and ``y``, both float32 of shape (n, 1); ``noise`` is the standard
    deviation of the Gaussian noise added to y.
    """
    _check("n", n, 1, integer=True)
    _check("noise", noise, 0, integer=False)
    rng = np.random.default_rng(seed)
    x = np.linspace(-np.pi, np.pi, n).reshape(n, 1)
    y = np.sin(x) + rng.normal(0.0, noise, size=x.shape)
    return x.astype(np.float32), y.astype(np.float32)
