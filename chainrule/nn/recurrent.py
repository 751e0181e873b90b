"""Recurrent layers: ``RNN``, ``LSTM`` and ``GRU`` (stacked layers over whole sequences)
and the cells ``RNNCell``, ``LSTMCell`` and ``GRUCell`` (one time step).

They follow PyTorch: the same arguments, call conventions, gate order (LSTM i, f, g, o;
GRU r, z, n), equations, initialisation (every weight and bias drawn from
U(-1/√H, 1/√H)) and parameter names (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``,
``bias_hh_l0``, ...; the cells' ``weight_ih``, ...). The weights are stored in
chainrule's layout, (in, out) as in ``Linear`` (y = x·W): ``weight_ih_l0`` has shape
(input_size, G·H) and ``weight_hh_l0`` (H, G·H), whose G column blocks are the gates,
where PyTorch stores their transposes. ``load_torch_state_dict`` takes a PyTorch state
dict as it is and transposes them on the way in.

The maths lives in ``chainrule/ops/recurrent.py``: by default every layer runs as one
fused operation over the whole sequence; ``fused=False`` runs the composed twin, the
cell written with elementary operations and unrolled step by step, which
``chainrule.explain`` and ``chainrule.viz`` can show (the cells always use it).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

import chainrule.functional as F
from chainrule.nn.init import RngLike, make_rng, uniform_
from chainrule.nn.layers import _check_positive
from chainrule.nn.module import Module, Parameter, as_input
from chainrule.ops.recurrent import NONLINEARITIES
from chainrule.tensor import Tensor

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "RNNBase"]

_STATE_NAMES = {1: "h_0", 2: "(h_0, c_0)"}


def _add_weights(module: Module, suffix: str, input_size: int, hidden_size: int,
                 gates: int, bias: bool, rng: np.random.Generator, dtype: Any) -> None:
    """Register weight_ih{suffix} (input_size, G·H), weight_hh{suffix} (H, G·H) and,
    with ``bias``, bias_ih{suffix} and bias_hh{suffix} (G·H,), each drawn from
    U(-1/√H, 1/√H) as in PyTorch."""
    bound = 1.0 / math.sqrt(hidden_size)
    shapes = {"weight_ih": (input_size, gates * hidden_size),
              "weight_hh": (hidden_size, gates * hidden_size)}
    if bias:
        shapes.update(bias_ih=(gates * hidden_size,), bias_hh=(gates * hidden_size,))
    for name, shape in shapes.items():
        param = Parameter(np.empty(shape, dtype=dtype))
        uniform_(param, -bound, bound, rng=rng)
        module.register_parameter(name + suffix, param)


def _check_float(dtype: Any) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"dtype must be a floating-point type (float32 or float64), got "
                         f"{dtype}")
    return dtype


# --------------------------------------------------------------------------- sequences
class RNNBase(Module):
    """Shared by ``RNN``, ``LSTM`` and ``GRU``: parameters, argument checks, the loop
    over layers (with dropout between them) and the input and state layouts."""

    torch_transposed = ("weight_ih_l*", "weight_hh_l*")
    _function: Any  # one layer over the sequence: F.rnn, F.lstm or F.gru
    _gates: int
    _states: int = 1  # h, or (LSTM) h and c

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, *,
                 fused: bool = True, seed: int | None = None, rng: RngLike = None,
                 dtype: Any = np.float32) -> None:
        super().__init__()
        self.input_size = _check_positive("input_size", input_size)
        self.hidden_size = _check_positive("hidden_size", hidden_size)
        self.num_layers = _check_positive("num_layers", num_layers)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) \
                or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout probability must be a number in [0, 1), got "
                             f"{dropout!r}")
        if dropout > 0 and self.num_layers == 1:
            warnings.warn(f"dropout={dropout} has no effect with num_layers=1: it acts "
                          "between layers, not after the last one", stacklevel=2)
        self.bias, self.batch_first = bool(bias), bool(batch_first)
        self.dropout, self.fused = float(dropout), bool(fused)
        dtype = _check_float(dtype)
        # one generator draws the initial weights and then the dropout masks
        self.rng = make_rng(rng, seed)
        for k in range(self.num_layers):
            _add_weights(self, f"_l{k}", self.input_size if k == 0 else self.hidden_size,
                         self.hidden_size, self._gates, self.bias, self.rng, dtype)

    def _layer(self, k: int, x: Tensor, states: tuple[Tensor | None, ...]) -> tuple:
        """Layer k over the time-major sequence: (h_1..h_T, h_T[, c_T])."""
        weights = [getattr(self, f"{name}_l{k}", None)
                   for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        return self._function(x, *states, *weights, fused=self.fused,
                              layer=k if self.num_layers > 1 else None, **self._options())

    def _options(self) -> dict[str, Any]:
        return {}

    def forward(self, input: Any, hx: Any = None) -> tuple[Tensor, Any]:
        """Run the sequence ``input`` through every layer.

        ``input`` is (T, N, input_size), (N, T, input_size) with ``batch_first``, or
        unbatched (T, input_size). ``hx`` is the initial state, (num_layers, N, H) each
        ((num_layers, H) unbatched): h_0 (LSTM: the pair (h_0, c_0)); None means zeros.
        Returns (output, h_n) (LSTM: (output, (h_n, c_n))): the last layer's hidden
        state at every step, in the input's layout, and every layer's final state.
        """
        name, first = type(self).__name__, self.weight_ih_l0
        x = as_input(input, first)
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size or x.shape[0] == 0 \
                or x.ndim == 3 and x.shape[1] == 0:
            layout = "(N, T, D)" if self.batch_first else "(T, N, D)"
            raise ValueError(f"{name}: expected input of shape {layout} or unbatched "
                             f"(T, D) with D = input_size = {self.input_size}, got "
                             f"{x.shape}")
        batched = x.ndim == 3
        if not batched:
            x = F.unsqueeze(x, 1)
        elif self.batch_first:
            x = F.swapaxes(x, 0, 1)  # time-major inside
        states = self._initial_states(hx, x.shape[1], batched)
        finals = []
        for k in range(self.num_layers):
            if k > 0 and self.training and self.dropout > 0:
                x = F.dropout(x, self.dropout, True, self.rng)
            x, *final = self._layer(k, x, states[k])
            finals.append(final)
        last = [F.stack([f[s] for f in finals]) for s in range(self._states)]
        if not batched:
            x = F.squeeze(x, 1)
            last = [F.squeeze(s, 1) for s in last]
        elif self.batch_first:
            x = F.swapaxes(x, 0, 1)
        return x, (last[0] if self._states == 1 else tuple(last))

    def _initial_states(self, hx: Any, batch: int,
                        batched: bool) -> list[tuple[Tensor | None, ...]]:
        """``hx`` split into one tuple of states per layer (Nones for zeros)."""
        L, S = self.num_layers, self._states
        if hx is None:
            return [(None,) * S] * L
        name, expected = type(self).__name__, _STATE_NAMES[S]
        given = hx if S > 1 else (hx,)
        if S > 1 and (not isinstance(hx, (tuple, list)) or len(hx) != S):
            raise TypeError(f"{name}: the initial state must be a pair {expected}, got "
                            f"{type(hx).__name__}")
        if S == 1 and isinstance(hx, (tuple, list)):
            raise TypeError(f"{name}: the initial state must be one tensor h_0, not a "
                            f"{type(hx).__name__}")
        shape = (L, batch, self.hidden_size) if batched else (L, self.hidden_size)
        states = []
        for state_name, state in zip(("h_0", "c_0"), given):
            state = as_input(state, self.weight_ih_l0)
            if state.shape != shape:
                layout = "(num_layers, N, H)" if batched else \
                    "(num_layers, H) for unbatched input"
                raise ValueError(f"{name}: {state_name} must have shape {layout} = {shape}, "
                                 f"got {state.shape}")
            states.append(state if batched else F.unsqueeze(state, 1))
        return [tuple(state[k] for state in states) for k in range(L)]

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        text += self._extra_text()
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if not self.fused:
            text += ", fused=False"
        return text

    def _extra_text(self) -> str:
        return ""


class RNN(RNNBase):
    """A stack of plain (Elman) RNN layers: h_t = tanh(x_t·W_ih + b_ih + h_{t-1}·W_hh +
    b_hh) (``nonlinearity='relu'``: relu), PyTorch's ``nn.RNN``.

    ``RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True,
    batch_first=False, dropout=0.0)``; ``dropout`` acts on the outputs of every layer
    but the last, in training mode. Keywords: ``fused`` (False runs the composed,
    step-by-step graph), ``seed``/``rng`` (initial weights and dropout masks),
    ``dtype``. Parameters per layer k: ``weight_ih_lk`` (D_k, H), ``weight_hh_lk``
    (H, H), ``bias_ih_lk`` and ``bias_hh_lk`` (H,). Calling it: see ``RNNBase.forward``;
    returns (output, h_n).
    """

    _function, _gates = staticmethod(F.rnn), 1

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, **kwargs: Any) -> None:
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"RNN: nonlinearity must be one of {NONLINEARITIES}, got "
                             f"{nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         **kwargs)

    def _options(self) -> dict[str, Any]:
        return {"nonlinearity": self.nonlinearity}

    def _extra_text(self) -> str:
        return "" if self.nonlinearity == "tanh" else f", nonlinearity={self.nonlinearity!r}"


class LSTM(RNNBase):
    """A stack of LSTM layers, PyTorch's ``nn.LSTM``.

    Per step, with A = x·W_ih + b_ih + h·W_hh + b_hh split into the gates i, f, g, o:
    i, f, o = σ(A_i), σ(A_f), σ(A_o); g = tanh(A_g); c' = f·c + i·g; h' = o·tanh(c').

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0)``; ``dropout`` acts on the outputs of every layer but the last, in
    training mode. Keywords: ``fused`` (False runs the composed, step-by-step graph),
    ``seed``/``rng`` (initial weights and dropout masks), ``dtype``. Parameters per
    layer k: ``weight_ih_lk`` (D_k, 4H), ``weight_hh_lk`` (H, 4H), ``bias_ih_lk`` and
    ``bias_hh_lk`` (4H,), column blocks i, f, g, o. Calling it: ``lstm(x, (h_0, c_0))``
    (see ``RNNBase.forward``) returns (output, (h_n, c_n)).
    """

    _function, _gates, _states = staticmethod(F.lstm), 4, 2


class GRU(RNNBase):
    """A stack of GRU layers, PyTorch's ``nn.GRU``.

    Per step: r, z = σ(x·W_ir,iz + b_ir,iz + h·W_hr,hz + b_hr,hz);
    n = tanh(x·W_in + b_in + r·(h·W_hn + b_hn)); h' = (1 - z)·n + z·h.

    ``GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0)``; keywords as ``LSTM``. Parameters per layer k: ``weight_ih_lk``
    (D_k, 3H), ``weight_hh_lk`` (H, 3H), ``bias_ih_lk`` and ``bias_hh_lk`` (3H,), column
    blocks r, z, n. Returns (output, h_n).
    """

    _function, _gates = staticmethod(F.gru), 3


# --------------------------------------------------------------------------- cells
class _CellBase(Module):
    """Shared by the cells: parameters ``weight_ih`` (D, G·H), ``weight_hh`` (H, G·H),
    ``bias_ih`` and ``bias_hh`` (G·H,), and the checks of input and state."""

    torch_transposed = ("weight_ih", "weight_hh")
    _gates: int
    _states: int = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *,
                 seed: int | None = None, rng: RngLike = None,
                 dtype: Any = np.float32) -> None:
        super().__init__()
        self.input_size = _check_positive("input_size", input_size)
        self.hidden_size = _check_positive("hidden_size", hidden_size)
        self.bias = bool(bias)
        _add_weights(self, "", self.input_size, self.hidden_size, self._gates, self.bias,
                     make_rng(rng, seed), _check_float(dtype))

    def _inputs(self, input: Any, hx: Any) -> tuple[Tensor, list[Tensor], bool]:
        """The input as (N, D), the states as (N, H) each (zeros for None), and whether
        the input was batched."""
        name = type(self).__name__
        x = as_input(input, self.weight_ih)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"{name}: expected input of shape (N, {self.input_size}) or "
                             f"({self.input_size},), got {x.shape}")
        batched = x.ndim == 2
        if not batched:
            x = F.unsqueeze(x, 0)
        shape = (x.shape[0], self.hidden_size)
        if hx is None:
            zeros = Tensor._wrap(np.zeros(shape, dtype=x.dtype))
            return x, [zeros] * self._states, batched
        if self._states > 1 and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError(f"{name}: the state must be a pair (h, c), got "
                            f"{type(hx).__name__}")
        if self._states == 1 and isinstance(hx, (tuple, list)):
            raise TypeError(f"{name}: the state must be one tensor h, not a "
                            f"{type(hx).__name__}")
        states = []
        for state_name, state in zip("hc", hx if self._states > 1 else (hx,)):
            state = as_input(state, self.weight_ih)
            if state.shape != (shape if batched else shape[1:]):
                raise ValueError(f"{name}: {state_name} must have shape "
                                 f"{shape if batched else shape[1:]} to fit the input, got "
                                 f"{state.shape}")
            states.append(state if batched else F.unsqueeze(state, 0))
        return x, states, batched

    def _params(self) -> list[Tensor | None]:
        return [self.weight_ih, self.weight_hh, self.bias_ih if self.bias else None,
                self.bias_hh if self.bias else None]

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class RNNCell(_CellBase):
    """One step of the plain RNN, PyTorch's ``nn.RNNCell``: ``cell(x, h)`` returns
    h' = tanh(x·W_ih + b_ih + h·W_hh + b_hh) (or relu). x (N, D) or (D,); h (N, H) or
    (H,), zeros when left out."""

    _gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", **kwargs: Any) -> None:
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"RNNCell: nonlinearity must be one of {NONLINEARITIES}, got "
                             f"{nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, **kwargs)

    def forward(self, input: Any, hx: Any = None) -> Tensor:
        x, (h,), batched = self._inputs(input, hx)
        h = F.rnn_cell(x, h, *self._params(), nonlinearity=self.nonlinearity)
        return h if batched else F.squeeze(h, 0)


class LSTMCell(_CellBase):
    """One LSTM step, PyTorch's ``nn.LSTMCell``: ``cell(x, (h, c))`` returns (h', c')
    (see ``LSTM`` for the equations). x (N, D) or (D,); h, c (N, H) or (H,), zeros when
    the state is left out."""

    _gates, _states = 4, 2

    def forward(self, input: Any, hx: Any = None) -> tuple[Tensor, Tensor]:
        x, (h, c), batched = self._inputs(input, hx)
        h, c = F.lstm_cell(x, h, c, *self._params())
        return (h, c) if batched else (F.squeeze(h, 0), F.squeeze(c, 0))


class GRUCell(_CellBase):
    """One GRU step, PyTorch's ``nn.GRUCell``: ``cell(x, h)`` returns h' (see ``GRU``
    for the equations). x (N, D) or (D,); h (N, H) or (H,), zeros when left out."""

    _gates = 3

    def forward(self, input: Any, hx: Any = None) -> Tensor:
        x, (h,), batched = self._inputs(input, hx)
        h = F.gru_cell(x, h, *self._params())
        return h if batched else F.squeeze(h, 0)
