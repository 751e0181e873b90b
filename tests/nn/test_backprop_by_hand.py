"""The four backpropagation equations, computed by hand in NumPy in
``examples/backprop_by_hand.py``, give chainrule's gradients."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "backprop_by_hand.py"


def load_example():
    spec = importlib.util.spec_from_file_location("backprop_by_hand", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_by_hand_equals_autodiff(seed):
    assert load_example().compare(seed) < 1e-10
