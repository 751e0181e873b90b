"""Fixtures shared by the whole test suite (kept small on purpose)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A freshly seeded generator: every test sees the same "random" inputs."""
    return np.random.default_rng(12345)


@pytest.fixture
def torch():
    """PyTorch, the reference implementation; tests using it are skipped without it."""
    return pytest.importorskip("torch")
