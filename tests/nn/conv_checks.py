"""A helper shared by the convolution tests (imported by name, as tests/core's
operator_cases is)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import chainrule


def double_backward(conv: Callable[..., Any], kw: dict) -> Callable[..., Any]:
    """(x, w, b) ↦ the first-order gradients of Σ conv(x, w, b, **kw)², recorded and
    combined into one scalar, so that gradcheck checks the second derivatives."""
    def f(x, w, b):
        with chainrule.enable_grad():  # gradcheck evaluates f under no_grad
            y = conv(x, w, b, **kw)
            gx, gw = chainrule.grad((y * y).sum(), [x, w], create_graph=True)
            return (gx * gx).sum() + (gw * gw * gw).sum()
    return f
