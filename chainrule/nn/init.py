"""Weight initialisation: fill a parameter in place with well-scaled random values.

Why it matters: if every layer multiplies the spread of its activations by a factor
a little above or below 1, a deep network's signals explode or vanish. Choosing the
spread of the initial weights from the layer's fan-in (the number of inputs each output
adds up) and fan-out keeps the activations' variance about the same from layer to layer:

* Xavier/Glorot (for sigmoid, tanh and linear layers): Var(W) = 2 / (fan_in + fan_out).
  The textbook's simpler version uses std = 1/√fan_in.
* He/Kaiming (for ReLU layers, which zero half their inputs): Var(W) = 2 / fan_in.

Every random initialiser takes ``rng=``, an ``np.random.Generator`` or an int seed, so
that a run can be repeated exactly; it writes into the tensor's array in place, keeps
its dtype and returns the tensor.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule.tensor import Tensor

__all__ = [
    "make_rng", "fan_in_and_fan_out", "normal_", "uniform_", "zeros_", "ones_",
    "constant_", "xavier_normal_", "xavier_uniform_", "he_normal_", "he_uniform_",
    "kaiming_normal_", "kaiming_uniform_", "get_initializer", "INITIALIZERS",
]

RngLike = np.random.Generator | int | None


def make_rng(rng: RngLike = None, seed: int | None = None) -> np.random.Generator:
    """A NumPy Generator from ``rng`` (a Generator, used as is, or an int seed) or
    ``seed``; a fresh unpredictable one when both are None."""
    if rng is not None and seed is not None:
        raise ValueError("give either seed= or rng=, not both")
    rng = seed if rng is None else rng
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be an np.random.Generator or an int seed, got "
                    f"{type(rng).__name__}")


def fan_in_and_fan_out(shape: tuple[int, ...], layout: str | None = None) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of ``shape``.

    ``layout`` says where the input and output axes are:

    * ``"in_out"``: (in_features, out_features), chainrule's ``Linear`` (y = x·W);
    * ``"out_in"``: (out_channels, in_channels, *kernel), convolutions (and PyTorch's
      Linear); each output sees in_channels·kh·kw inputs, each input feeds
      out_channels·kh·kw outputs.

    ``None`` picks "in_out" for 2-D weights and "out_in" for 3-D and more.
    """
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"fan-in and fan-out need a weight with at least 2 dimensions, "
                         f"got shape {shape} (biases are initialised with zeros_ or "
                         "constant_)")
    if layout is None:
        layout = "in_out" if len(shape) == 2 else "out_in"
    receptive = math.prod(shape[2:])  # 1 for a matrix
    if layout == "in_out":
        return shape[0] * receptive, shape[1] * receptive
    if layout == "out_in":
        return shape[1] * receptive, shape[0] * receptive
    raise ValueError(f"layout must be 'in_out' (Linear: (in, out)) or 'out_in' "
                     f"(convolution: (out, in, kh, kw)), got {layout!r}")


def _array(tensor: Tensor | np.ndarray) -> np.ndarray:
    array = tensor.data if isinstance(tensor, Tensor) else tensor
    if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
        raise TypeError("initialisers fill a floating-point Tensor or NumPy array, got "
                        f"{type(tensor).__name__}"
                        + (f" of dtype {array.dtype}" if isinstance(array, np.ndarray) else ""))
    return array


def _fill(tensor: Any, values: np.ndarray | float) -> Any:
    """Write ``values`` into the tensor's array in place (keeping its dtype)."""
    array = _array(tensor)
    array[...] = values
    return tensor


# --------------------------------------------------------------------------- constants
def zeros_(tensor: Any) -> Any:
    """Fill with 0 (biases)."""
    return _fill(tensor, 0.0)


def ones_(tensor: Any) -> Any:
    """Fill with 1 (the scale γ of normalisation layers)."""
    return _fill(tensor, 1.0)


def constant_(tensor: Any, value: float) -> Any:
    """Fill with ``value``."""
    return _fill(tensor, float(value))


# --------------------------------------------------------------------------- random
def normal_(tensor: Any, std: float = 0.01, mean: float = 0.0, rng: RngLike = None) -> Any:
    """Fill with draws from N(mean, std²); std=0.01 is the textbook's
    ``weight_init_std``."""
    array = _array(tensor)
    return _fill(tensor, make_rng(rng).normal(mean, std, size=array.shape))


def uniform_(tensor: Any, a: float = 0.0, b: float = 1.0, rng: RngLike = None) -> Any:
    """Fill with draws from U(a, b)."""
    array = _array(tensor)
    return _fill(tensor, make_rng(rng).uniform(a, b, size=array.shape))


def xavier_normal_(tensor: Any, gain: float = 1.0, rng: RngLike = None,
                   layout: str | None = None) -> Any:
    """Glorot normal: std = gain·√(2 / (fan_in + fan_out)). For sigmoid/tanh/linear."""
    fan_in, fan_out = fan_in_and_fan_out(_array(tensor).shape, layout)
    return normal_(tensor, std=gain * math.sqrt(2.0 / (fan_in + fan_out)), rng=rng)


def xavier_uniform_(tensor: Any, gain: float = 1.0, rng: RngLike = None,
                    layout: str | None = None) -> Any:
    """Glorot uniform: U(-a, a) with a = gain·√(6 / (fan_in + fan_out)) (same variance
    as ``xavier_normal_``, since Var U(-a, a) = a²/3)."""
    fan_in, fan_out = fan_in_and_fan_out(_array(tensor).shape, layout)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, rng=rng)


def _relu_gain(negative_slope: float) -> float:
    # ReLU keeps half of a symmetric input's second moment, so the weights need twice
    # the variance; LeakyReLU keeps (1 + slope²)/2 of it.
    return math.sqrt(2.0 / (1.0 + negative_slope**2))


def he_normal_(tensor: Any, negative_slope: float = 0.0, rng: RngLike = None,
               layout: str | None = None) -> Any:
    """He/Kaiming normal for ReLU layers: std = √(2 / fan_in) (√(2/((1+a²)·fan_in)) for
    LeakyReLU with slope a)."""
    fan_in, _ = fan_in_and_fan_out(_array(tensor).shape, layout)
    return normal_(tensor, std=_relu_gain(negative_slope) / math.sqrt(fan_in), rng=rng)


def he_uniform_(tensor: Any, negative_slope: float = 0.0, rng: RngLike = None,
                layout: str | None = None) -> Any:
    """He/Kaiming uniform: U(-a, a) with a = √(6 / fan_in) (same variance as
    ``he_normal_``)."""
    fan_in, _ = fan_in_and_fan_out(_array(tensor).shape, layout)
    bound = _relu_gain(negative_slope) * math.sqrt(3.0 / fan_in)
    return uniform_(tensor, -bound, bound, rng=rng)


kaiming_normal_ = he_normal_
kaiming_uniform_ = he_uniform_

# --------------------------------------------------------------------------- by name
INITIALIZERS: dict[str, Callable[..., Any]] = {
    "std": normal_, "normal": normal_, "uniform": uniform_,
    "xavier": xavier_normal_, "glorot": xavier_normal_,
    "xavier_normal": xavier_normal_, "glorot_normal": xavier_normal_,
    "xavier_uniform": xavier_uniform_, "glorot_uniform": xavier_uniform_,
    "he": he_normal_, "kaiming": he_normal_, "he_normal": he_normal_,
    "kaiming_normal": he_normal_, "he_uniform": he_uniform_, "kaiming_uniform": he_uniform_,
    "zeros": zeros_, "ones": ones_,
}

_RANDOM = {normal_, uniform_, xavier_normal_, xavier_uniform_, he_normal_, he_uniform_}


def get_initializer(init: str | Callable[..., Any]) -> Callable[..., Any]:
    """The initialiser called ``init`` ('std'/'normal', 'xavier'/'glorot', 'he'/'kaiming',
    'zeros', ...; see ``INITIALIZERS``), or ``init`` itself when it is callable.

    Layers call it as ``init(weight, rng=generator)``, so a custom initialiser must
    accept an ``rng`` keyword argument.
    """
    if callable(init):
        return init
    if isinstance(init, str) and init.lower() in INITIALIZERS:
        chosen = INITIALIZERS[init.lower()]
        if chosen in _RANDOM:
            return chosen
        return lambda tensor, rng=None: chosen(tensor)  # constants ignore rng
    raise ValueError(f"unknown initialiser {init!r}; valid names: "
                     + ", ".join(sorted(INITIALIZERS)) + " (or pass a callable)")
