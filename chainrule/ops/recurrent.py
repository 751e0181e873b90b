"""Recurrent networks: the RNN, LSTM and GRU cells, and one layer of each run over time.

Every cell comes in two forms that compute the same values and gradients:

* **composed** (``rnn_cell``, ``lstm_cell``, ``gru_cell``, and ``rnn``/``lstm``/``gru``
  with ``fused=False``): the cell written with existing operations (linear, sigmoid,
  tanh, mul, add, split) and a Python loop over time (``unroll``) that records every
  step. This is the unrolled graph that ``chainrule.explain`` and ``chainrule.viz``
  show (the states are named ``h_1``, ``c_1``, ``h_2``, ...), and it can be
  differentiated twice;
* **fused** (the operations ``RNN``, ``LSTM`` and ``GRU``, the default of
  ``rnn``/``lstm``/``gru``): one operation per layer and sequence whose forward runs all
  T steps on arrays, caching what backward needs, and whose backward runs the reverse
  loop, as book 2's time layers do. This is what trains fast; tests hold it equal to the
  composed twin.

Layout and conventions (PyTorch's equations and gate order, chainrule's weight layout):

* sequences are time-major, x of shape (T, N, D) (the modules in ``chainrule.nn`` also
  take batch-first input); states h (and c) have shape (N, H);
* ``weight_ih`` has shape (D, G·H) and ``weight_hh`` (H, G·H), multiplied from the right
  as in ``Linear`` (x·W); PyTorch stores their transposes, (G·H, D) and (G·H, H). The G
  column blocks of H are the gates in PyTorch's order: LSTM i, f, g, o (G = 4); GRU
  r, z, n (G = 3); plain RNN one block (G = 1). ``bias_ih`` and ``bias_hh`` have shape
  (G·H,);
* RNN:  h' = tanh(x·W_ih + b_ih + h·W_hh + b_hh)  (or relu);
* LSTM: [i, f, g, o] = [σ, σ, tanh, σ](x·W_ih + b_ih + h·W_hh + b_hh);
  c' = f·c + i·g;  h' = o·tanh(c');
* GRU:  [r, z] = σ(x·W_ir,iz + b_ir,iz + h·W_hr,hz + b_hr,hz);
  n = tanh(x·W_in + b_in + r·(h·W_hn + b_hn))  (the reset gate acts after the matmul);
  h' = (1 - z)·n + z·h.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule.ops._constants import cached_array
from chainrule.ops.elementwise import relu, sigmoid, tanh
from chainrule.ops.nn import _sum_rows, linear
from chainrule.ops.shape import concatenate, split, stack, unsqueeze
from chainrule.tensor import Function, Tensor, _GradMode, as_tensor, grad

__all__ = ["rnn_cell", "lstm_cell", "gru_cell", "rnn", "lstm", "gru", "unroll",
           "RNN", "LSTM", "GRU", "Recurrence"]

NONLINEARITIES = ("tanh", "relu")


# --------------------------------------------------------------------------- cells (composed)
def rnn_cell(x: Any, h: Tensor, weight_ih: Tensor, weight_hh: Tensor,
             bias_ih: Tensor | None = None, bias_hh: Tensor | None = None,
             nonlinearity: str = "tanh") -> Tensor:
    """One step of the plain (Elman) RNN: h' = tanh(x·W_ih + b_ih + h·W_hh + b_hh)
    (``nonlinearity='relu'``: relu). x (N, D) or (D,); h (N, H) or (H,)."""
    a = linear(x, weight_ih, bias_ih) + linear(h, weight_hh, bias_hh)
    return tanh(a) if nonlinearity == "tanh" else relu(a)


def lstm_cell(x: Any, h: Tensor, c: Tensor, weight_ih: Tensor, weight_hh: Tensor,
              bias_ih: Tensor | None = None,
              bias_hh: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """One LSTM step; returns (h', c').

    The pre-activations A = x·W_ih + b_ih + h·W_hh + b_hh (N, 4H) split into the gates
    i, f, g, o (PyTorch's order): i = σ(A_i), f = σ(A_f), g = tanh(A_g), o = σ(A_o);
    c' = f·c + i·g (forget some of the memory, write some new), h' = o·tanh(c').
    """
    a = linear(x, weight_ih, bias_ih) + linear(h, weight_hh, bias_hh)
    a_i, a_f, a_g, a_o = split(a, 4, axis=-1)
    i, f, g, o = sigmoid(a_i), sigmoid(a_f), tanh(a_g), sigmoid(a_o)
    c_next = f * c + i * g
    h_next = o * tanh(c_next)
    return h_next, c_next


def gru_cell(x: Any, h: Tensor, weight_ih: Tensor, weight_hh: Tensor,
             bias_ih: Tensor | None = None, bias_hh: Tensor | None = None) -> Tensor:
    """One GRU step (PyTorch's form): r, z = σ(x·W_ir,iz + b + h·W_hr,hz + b),
    n = tanh(x·W_in + b_in + r·(h·W_hn + b_hn)), h' = (1 - z)·n + z·h."""
    x_r, x_z, x_n = split(linear(x, weight_ih, bias_ih), 3, axis=-1)
    h_r, h_z, h_n = split(linear(h, weight_hh, bias_hh), 3, axis=-1)
    r = sigmoid(x_r + h_r)
    z = sigmoid(x_z + h_z)
    n = tanh(x_n + r * h_n)
    return n + z * (h - n)  # = (1 - z)·n + z·h


# --------------------------------------------------------------------------- time loop (composed)
def state_name(symbol: str, t: int, layer: int | None = None) -> str:
    """The label of a state in the unrolled graph: ``h_3`` (``h_3/l1`` in layer 1)."""
    return f"{symbol}_{t}" + ("" if layer is None else f"/l{layer}")


def unroll(cell: Callable[..., Any], x: Tensor, states: Sequence[Tensor],
           params: Sequence[Tensor | None],
           layer: int | None = None) -> tuple[Tensor, tuple[Tensor, ...]]:
    """The composed time loop, the same for every cell: ``cell(x_t, *states, *params)``
    for t = 1..T, every step recorded.

    ``cell`` returns the new state (or a tuple of states, h first). Returns the hidden
    states stacked, (T, N, H), and the final states. The states are named ``h_t``
    (and ``c_t``) so that explain and the graph pictures show the time steps.
    """
    hidden = []
    for t in range(x.shape[0]):
        new = cell(x[t], *states, *params)
        states = new if isinstance(new, tuple) else (new,)
        for symbol, state in zip("hc", states):
            state.name = state_name(symbol, t + 1, layer)
        hidden.append(states[0])
    return stack(hidden), tuple(states)


# --------------------------------------------------------------------------- fused layers
def _sigmoid_(a: np.ndarray) -> np.ndarray:
    """σ(a) in place, as ½ + ½·tanh(a/2): the same function, never overflows, and one
    pass of tanh is cheaper than exp, add and divide."""
    a *= 0.5
    np.tanh(a, out=a)
    a *= 0.5
    a += 0.5
    return a


class _Alias(Function):
    """y = x, recorded (see ``Recurrence._composed_gradients``)."""

    rule = "dy/dx = 1"
    formula = "y = x, recorded as a node of its own"

    def forward(self, x):
        return x

    def backward(self, g):
        return g


class Recurrence(Function):
    """One recurrent layer run over a whole sequence as one operation: the base of the
    fused ``RNN``, ``LSTM`` and ``GRU``, which supply ``step`` and ``step_backward``.

    Inputs: x (T, N, D); the initial states, h_0 and (LSTM) c_0, (N, H) each;
    weight_ih (D, G·H); weight_hh (H, G·H); and, with ``has_bias``, bias_ih and bias_hh
    (G·H,). Output: h_1..h_T followed by the final value of every other state (LSTM:
    c_T), stacked to (T + S - 1, N, H) for S states, because an operation has one
    output (``lstm`` slices it into output, h_n and c_n).

    forward: the input's part of every step is one (T·N, D)·(D, G·H) product; the loop
    over time is left with h·W_hh and the cell's elementwise work (``step``), which
    caches what backward needs.

    backward: the reverse loop carries dh (and dc) from step to step. At step t,
    dh = dh_out[t] + dh from step t+1; ``step_backward`` turns it into dA, the gradient
    of the step's pre-activations, and dh_{t-1} = dA·W_hhᵀ. Everything that does not
    depend on the step is done once on the T·N rows: dx = dA·W_ihᵀ, dW_ih = xᵀ·dA,
    dW_hh = h_prevᵀ·dA, db = Σ dA.

    With ``create_graph=True`` the gradient must itself be differentiable: it is then
    taken through the composed twin (``composed``), recorded.
    """

    rule = ("backwards through time: dA_t from dh_t (the cell's rule), dh_{t-1} = "
            "dA_t·W_hhᵀ; dx = dA·W_ihᵀ, dW_ih = Σ xᵀ·dA, dW_hh = Σ h_prevᵀ·dA, db = Σ dA")
    formula = "one recurrent layer over a whole sequence (the base of RNN, LSTM and GRU)"
    gates: int  # G: blocks of H columns in the pre-activations
    states: int = 1  # S: h only, or h and c
    # whether b_hh can be added to the input projection once: not in the GRU, whose
    # reset gate multiplies h·W_hn + b_hn
    folds_hidden_bias: bool = True
    cell: Callable[..., Any]  # the composed twin's cell

    def __init__(self, has_bias: bool) -> None:
        self.has_bias = has_bias

    def forward(self, x, *rest):
        S = self.states
        initial, (weight_ih, weight_hh, *biases) = rest[:S], rest[S:]
        T, N, D = x.shape
        H = weight_hh.shape[0]
        self.x2 = x.reshape(T * N, D)
        # the input's part of every step at once, (T·N, D)·(D, G·H); ``step`` turns
        # xa[t] into its gates in place, so after the loop xa holds every step's gates
        xa = (self.x2 @ weight_ih).reshape(T, N, self.gates * H)
        self.bias_hh = None
        if biases:
            bias_ih, bias_hh = biases
            if self.folds_hidden_bias:
                xa += bias_ih + bias_hh
            else:
                xa += bias_ih
                self.bias_hh = bias_hh
        self.xa, self.weight_hh, self.h0 = xa, weight_hh, initial[0]
        out = np.empty((T + S - 1, N, H), dtype=xa.dtype)
        self.hs = out[:T]  # step t writes h_{t+1} into hs[t]
        self.start(initial, T)
        states = initial
        for t in range(T):
            states = self.step(t, xa[t], states)
        if S > 1:
            out[T:] = states[1:]
        return out

    def backward(self, g):
        if _GradMode.enabled:
            return self._composed_gradients(g)
        g = g.data
        needs, S = self.needs_input_grad, self.states
        weight_ih, weight_hh = self.inputs[S + 1].data, self.inputs[S + 2].data
        T, N, GH = self.xa.shape
        D, H = weight_ih.shape[0], weight_hh.shape[0]
        # dA at every step: of the input's part x·W_ih + b_ih (dxa), and of the hidden
        # part h·W_hh + b_hh (dha, the same except in the GRU). dxa starts out holding
        # the factors of dA that do not depend on the gradient (``start_backward``);
        # step t multiplies its row by the step's gradients in place
        dxa = self.start_backward()
        dha = dxa if self.folds_hidden_bias else np.empty_like(dxa)
        weight_hh_t = np.ascontiguousarray(weight_hh.T)  # BLAS: ~2× faster at H = 100
        dhs = g[:T]  # the gradients arriving at h_1..h_T from the output
        dh = np.zeros((N, H), dtype=g.dtype)
        dstates = tuple(g[T:])  # the other final states' gradients (LSTM: dc_T)
        for t in reversed(range(T)):
            dh += dhs[t]  # h_t feeds the output and step t+1
            direct, dstates = self.step_backward(t, dh, dstates, dxa[t], dha[t])
            if t > 0 or needs[1]:
                dh = dha[t] @ weight_hh_t  # dh_{t-1} = dA·W_hhᵀ
                if direct is not None:  # (the GRU's h_{t-1} also feeds h_t directly)
                    dh += direct
        dxa2, dha2 = dxa.reshape(T * N, GH), dha.reshape(T * N, GH)
        grads: list[np.ndarray | None] = [
            (dxa2 @ weight_ih.T).reshape(T, N, D) if needs[0] else None,  # dx = dA·W_ihᵀ
            dh if needs[1] else None, *dstates]
        if needs[S + 1]:
            grads.append(self.x2.T @ dxa2)  # dW_ih = Σ xᵀ·dA
        else:
            grads.append(None)
        if needs[S + 2]:  # dW_hh = Σ h_{t-1}ᵀ·dA_t, with h_0 apart from h_1..h_{T-1}
            grads.append(self.h0.T @ dha[0]
                         + self.hs[:T - 1].reshape(-1, H).T @ dha2[N:])
        else:
            grads.append(None)
        if self.has_bias:  # db = Σ dA over time and batch
            grads.append(_sum_rows(dxa2) if needs[S + 3] else None)
            grads.append(_sum_rows(dha2) if needs[S + 4] else None)
        return tuple([None if a is None or not need else Tensor._wrap(a)
                      for a, need in zip(grads, needs)])

    # ------------------------------------------------------------------ per cell
    def start(self, initial: tuple[np.ndarray, ...], T: int) -> None:
        """Allocate the caches of the T steps (before the loop)."""

    def step(self, t: int, a: np.ndarray,
             states: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        """Step t: ``a`` holds x_t·W_ih + bias (N, G·H); add h·W_hh, apply the cell,
        write h into ``self.hs[t]``, return the new states."""
        raise NotImplementedError

    def start_backward(self) -> np.ndarray:
        """Before the reverse loop: the factors of every step's dA that do not depend
        on the gradient (the local derivatives of the cell), shaped (T, N, G·H)."""
        raise NotImplementedError

    def step_backward(self, t: int, dh: np.ndarray, dstates: tuple[np.ndarray, ...],
                      dxa: np.ndarray, dha: np.ndarray,
                      ) -> tuple[np.ndarray | None, tuple[np.ndarray, ...]]:
        """Step t backwards: multiply the factors in ``dxa`` by the gradients dh (and
        the other states'), turning them into dA in place (and fill ``dha``); return
        the part of dh_{t-1} that bypasses W_hh (or None) and the other states'
        gradients at t-1."""
        raise NotImplementedError

    # ------------------------------------------------------------------ create_graph
    def composed(self, x: Tensor, *rest: Tensor) -> Tensor:
        """This operation's output computed by the composed twin (recorded)."""
        S = self.states
        hidden, final = unroll(self.cell, x, rest[:S], rest[S:])
        return concatenate([hidden, *(unsqueeze(s, 0) for s in final[1:])]) if S > 1 \
            else hidden

    def _composed_gradients(self, g: Tensor) -> tuple[Tensor | None, ...]:
        needs = self.needs_input_grad
        # Stand-ins for the inputs, recorded as y = x and then cut loose while the twin
        # is built and differentiated: this inner pass stops at them instead of running
        # on into the graph before this operation (which the outer pass covers).
        # Reattached afterwards, the recorded gradients lead back to the inputs, so they
        # can be differentiated again.
        stand_ins = [_Alias()(x) if need else x for x, need in zip(self.inputs, needs)]
        links = [(s, s.creator) for s, need in zip(stand_ins, needs) if need]
        for s, _ in links:
            s.creator = None
        try:
            output = self.composed(*stand_ins)
            found = grad(output, [s for s, _ in links], g, create_graph=True,
                         allow_unused=True)
        finally:
            for s, creator in links:
                s.creator = creator
        found.reverse()
        return tuple(found.pop() if need else None for need in needs)


class RNN(Recurrence):
    """The plain RNN over a sequence: h_t = act(x_t·W_ih + b_ih + h_{t-1}·W_hh + b_hh)."""

    rule = ("dA = dh·(1 - h²) (tanh; relu: dh·[h > 0]); dh_prev = dA·W_hhᵀ; "
            "dx = dA·W_ihᵀ, dW_ih = Σ xᵀ·dA, dW_hh = Σ h_prevᵀ·dA, db = Σ dA")
    formula = "h_t = tanh(x_t·W_ih + b_ih + h_{t-1}·W_hh + b_hh) (or relu) for t = 1..T"
    special = "relu: gradient 0 where the pre-activation is 0 (as torch)"
    gates = 1

    def __init__(self, has_bias: bool, nonlinearity: str = "tanh") -> None:
        super().__init__(has_bias)
        self.nonlinearity = nonlinearity
        self.cell = functools.partial(rnn_cell, nonlinearity=nonlinearity)

    def step(self, t, a, states):
        (h,) = states
        a += h @ self.weight_hh  # x·W_ih + b_ih + b_hh + h·W_hh
        if self.nonlinearity == "tanh":
            return (np.tanh(a, out=self.hs[t]),)
        return (np.maximum(a, 0, out=self.hs[t]),)

    def start_backward(self):
        h = self.hs  # act'(A) in terms of the output h = act(A)
        if self.nonlinearity == "tanh":
            slope = h * h
            return np.subtract(1, slope, out=slope)  # 1 - h²
        return (h > 0).astype(h.dtype)  # [h > 0]

    def step_backward(self, t, dh, dstates, dxa, dha):
        dxa *= dh  # dA = dh·(1 - h²) (relu: dh·[h > 0])
        return None, ()


class LSTM(Recurrence):
    """The LSTM over a sequence (gates i, f, g, o); output h_1..h_T, then c_T."""

    rule = ("ds = dc + dh·o·(1 - tanh²c); di = ds·g·i(1-i); df = ds·c_prev·f(1-f); "
            "dg = ds·i·(1-g²); do = dh·tanh c·o(1-o); dc_prev = ds·f; "
            "dh_prev = dA·W_hhᵀ with dA = [di, df, dg, do]; "
            "dx = dA·W_ihᵀ, dW_ih = Σ xᵀ·dA, dW_hh = Σ h_prevᵀ·dA, db = Σ dA")
    formula = ("i, f, g, o = σ, σ, tanh, σ of x_t·W_ih + h_{t-1}·W_hh + b; c_t = f·c_{t-1} + i·g; "
               "h_t = o·tanh c_t")
    gates = 4
    states = 2
    cell = staticmethod(lstm_cell)

    def start(self, initial, T):
        h0, c0 = initial
        (N, H), dtype = c0.shape, self.xa.dtype
        self.cs = np.empty((T + 1, N, H), dtype=dtype)  # c_0..c_T
        self.cs[0] = c0
        self.tanh_cs = np.empty((T, N, H), dtype=dtype)
        # σ(a) = ½ + ½·tanh(a/2): scaling A by ½ (1 in the g block) before and after one
        # tanh, then adding ½ (0 for g), turns it into the four gates in four passes
        self.scale = np.tile(np.repeat(np.array([0.5, 0.5, 1, 0.5], dtype), H), (N, 1))
        self.shift = np.tile(np.repeat(np.array([0.5, 0.5, 0, 0.5], dtype), H), (N, 1))

    def step(self, t, a, states):
        h, c = states
        H = h.shape[-1]
        a += h @ self.weight_hh  # A = x·W_ih + b + h·W_hh: (N, 4H), blocks i f g o
        a *= self.scale  # the gates i, f, g, o = σ, σ, tanh, σ of A, in place
        np.tanh(a, out=a)
        a *= self.scale
        a += self.shift
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        c_next = np.multiply(f, c, out=self.cs[t + 1])
        c_next += i * g  # c' = f·c + i·g
        tanh_c = np.tanh(c_next, out=self.tanh_cs[t])
        h_next = np.multiply(o, tanh_c, out=self.hs[t])  # h' = o·tanh c'
        return h_next, c_next

    def start_backward(self):
        # The backward equations, with the factors that do not depend on the gradient
        # in brackets, computed here for all steps at once:
        #   ds = dc + dh·[o·(1 - tanh²c)]   (c_t reaches the loss through h_t and c_{t+1})
        #   di = ds·[g·i(1-i)],  df = ds·[c_prev·f(1-f)],  dg = ds·[i·(1-g²)],
        #   do = dh·[tanh c·o(1-o)],  dc_prev = ds·[f]
        T, N, H4 = self.xa.shape
        H = H4 // 4
        gates = self.xa.reshape(T, N, 4, H)
        i, f, g, o = gates[:, :, 0], gates[:, :, 1], gates[:, :, 2], gates[:, :, 3]
        tanh_c, c_prev = self.tanh_cs, self.cs[:T]
        dc_dh = tanh_c * tanh_c
        np.subtract(1, dc_dh, out=dc_dh)
        dc_dh *= o  # o·(1 - tanh²c)
        local = 1 - gates
        local *= gates  # σ(1-σ), the sigmoid gates' derivative (g's block is replaced)
        local[:, :, 0] *= g  # g·i(1-i)
        local[:, :, 1] *= c_prev  # c_prev·f(1-f)
        d_g = np.multiply(g, g, out=local[:, :, 2])
        np.subtract(1, d_g, out=d_g)
        d_g *= i  # i·(1-g²)
        local[:, :, 3] *= tanh_c  # tanh c·o(1-o)
        self.dc_dh, self.forget = dc_dh, f
        return local.reshape(T, N, H4)

    def step_backward(self, t, dh, dstates, dxa, dha):
        (dc,) = dstates
        ds = dh * self.dc_dh[t]
        ds += dc  # ds = dc + dh·o·(1 - tanh²c)
        dA = dxa.reshape(dh.shape[0], 4, -1)  # (N, 4, H), blocks i f g o
        dA[:, :3] *= ds[:, None]  # di, df, dg = ds·[...]
        dA[:, 3] *= dh  # do = dh·[...]
        return None, (ds * self.forget[t],)  # dc_prev = ds·f


class GRU(Recurrence):
    """The GRU over a sequence (gates r, z, n; the reset gate acts after h·W_hn)."""

    rule = ("dn = dh·(1-z), dA_n = dn·(1-n²), dr = dA_n·(h·W_hn + b_hn), "
            "dA_r = dr·r(1-r), dA_z = dh·(h_prev - n)·z(1-z); "
            "dh_prev = dh·z + [dA_r, dA_z, dA_n·r]·W_hhᵀ; "
            "dx = [dA_r, dA_z, dA_n]·W_ihᵀ, dW_ih = Σ xᵀ·dA_x, dW_hh = Σ h_prevᵀ·dA_h")
    formula = ("r, z = σ(x_t·W_i + h_{t-1}·W_h + b); n = tanh(x_t·W_in + b_in + r·(h_{t-1}·W_hn + "
               "b_hn)); h_t = (1-z)·n + z·h_{t-1}")
    gates = 3
    folds_hidden_bias = False
    cell = staticmethod(gru_cell)

    def start(self, initial, T):
        (h0,) = initial
        self.hns = np.empty((T,) + h0.shape, dtype=self.xa.dtype)  # h·W_hn + b_hn

    def step(self, t, a, states):
        (h,) = states
        H = h.shape[-1]
        ha = h @ self.weight_hh  # (N, 3H), blocks r z n
        if self.bias_hh is not None:
            ha += self.bias_hh
        hn = self.hns[t]
        hn[...] = ha[:, 2 * H:]
        rz = a[:, :2 * H]
        rz += ha[:, :2 * H]
        _sigmoid_(rz)  # r, z in place
        r, z, n = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
        n += r * hn
        np.tanh(n, out=n)  # n = tanh(x·W_in + b_in + r·(h·W_hn + b_hn))
        h_next = np.subtract(h, n, out=self.hs[t])
        h_next *= z
        h_next += n  # h' = n + z·(h - n) = (1 - z)·n + z·h
        return (h_next,)

    def start_backward(self):
        # The backward equations, with the factors that do not depend on the gradient
        # in brackets, computed here for all steps at once:
        #   dA_n = dh·[(1-z)·(1-n²)]     (through h' = (1-z)·n + z·h and n = tanh A_n)
        #   dA_r = dh·[(1-z)·(1-n²)·hn·r(1-r)]     (hn = h·W_hn + b_hn, scaled by r in A_n)
        #   dA_z = dh·[(h_prev - n)·z(1-z)]
        #   the hidden part's dA_n is dA_n·[r]; dh_prev gets dh·[z] directly
        T, N, H3 = self.xa.shape
        H = H3 // 3
        gates = self.xa.reshape(T, N, 3, H)
        r, z, n = gates[:, :, 0], gates[:, :, 1], gates[:, :, 2]
        h_prev = np.concatenate([self.h0[None], self.hs[:T - 1]])
        local = np.empty_like(gates)
        np.multiply(1 - z, 1 - n * n, out=local[:, :, 2])
        np.multiply(local[:, :, 2] * self.hns, r * (1 - r), out=local[:, :, 0])
        np.multiply(h_prev - n, z * (1 - z), out=local[:, :, 1])
        self.reset, self.update = r, z
        return local.reshape(T, N, H3)

    def step_backward(self, t, dh, dstates, dxa, dha):
        H = dh.shape[-1]
        dA = dxa.reshape(dh.shape[0], 3, H)  # (N, 3, H), blocks r z n
        dA *= dh[:, None]  # dA_r, dA_z, dA_n = dh·[...]
        dha[:, :2 * H] = dxa[:, :2 * H]  # r and z see x and h alike
        np.multiply(dxa[:, 2 * H:], self.reset[t], out=dha[:, 2 * H:])  # scaled by r
        return dh * self.update[t], ()  # h_{t-1} also reaches h_t as z·h_{t-1}


# --------------------------------------------------------------------------- layer functions
_GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _check_layer(op: str, x: Tensor, states: Sequence[Tensor | None],
                 weight_ih: Tensor, weight_hh: Tensor, bias_ih: Tensor | None,
                 bias_hh: Tensor | None) -> list[Tensor]:
    """Check the shapes of one layer's arguments; return the states, zeros for None."""
    G = _GATES[op]
    if weight_hh.ndim != 2 or weight_hh.shape[1] != G * weight_hh.shape[0]:
        raise ValueError(f"{op}: weight_hh must have shape (H, {G}·H), got "
                         f"{weight_hh.shape}")
    H = weight_hh.shape[0]
    if weight_ih.ndim != 2 or weight_ih.shape[1] != G * H:
        raise ValueError(f"{op}: weight_ih must have shape (input_size, {G * H}) to fit "
                         f"weight_hh {weight_hh.shape}, got {weight_ih.shape}")
    if x.ndim != 3 or x.shape[2] != weight_ih.shape[0] or x.shape[0] == 0:
        raise ValueError(f"{op}: input must have shape (T, N, {weight_ih.shape[0]}) "
                         f"(time-major, T ≥ 1), got {x.shape}")
    for name, bias in (("bias_ih", bias_ih), ("bias_hh", bias_hh)):
        if bias is not None and bias.shape != (G * H,):
            raise ValueError(f"{op}: {name} must have shape ({G * H},), got {bias.shape}")
    if (bias_ih is None) != (bias_hh is None):
        raise ValueError(f"{op}: give both bias_ih and bias_hh, or neither")
    N = x.shape[1]
    checked = []
    for name, state in zip(("h0", "c0"), states):
        if state is None:
            state = Tensor._wrap(cached_array("zeros", (N, H), x.dtype))
        elif state.shape != (N, H):
            raise ValueError(f"{op}: {name} must have shape (N, H) = {(N, H)}, got "
                             f"{state.shape}")
        checked.append(state)
    return checked


def _run(op: str, fn: Recurrence | None, cell: Callable[..., Any], x: Any,
         states: Sequence[Any], weights: Sequence[Tensor | None],
         layer: int | None) -> tuple[Tensor, ...]:
    """One layer over the sequence, fused (``fn``) or composed (``fn`` None): returns
    the hidden states (T, N, H) and the final states."""
    weight_ih, weight_hh, bias_ih, bias_hh = weights
    x = as_tensor(x, like=weight_ih)
    states = [None if s is None else as_tensor(s, like=weight_ih) for s in states]
    states = _check_layer(op, x, states, weight_ih, weight_hh, bias_ih, bias_hh)
    params = [weight_ih, weight_hh] + ([bias_ih, bias_hh] if bias_ih is not None else [])
    if fn is None:
        hidden, final = unroll(cell, x, states, params, layer)
        return (hidden, *final)
    out = fn(x, *states, *params)
    T = x.shape[0]
    if len(states) == 1:
        return out, out[T - 1]
    return out[:T], out[T - 1], out[T]


def rnn(x: Any, h0: Tensor | None, weight_ih: Tensor, weight_hh: Tensor,
        bias_ih: Tensor | None = None, bias_hh: Tensor | None = None,
        nonlinearity: str = "tanh", fused: bool = True,
        layer: int | None = None) -> tuple[Tensor, Tensor]:
    """One RNN layer over a time-major sequence x (T, N, D) from h0 (N, H) (None:
    zeros). Returns (h_1..h_T as (T, N, H), h_T). ``fused=False`` runs the composed
    twin (``layer`` only labels its states in explain: ``h_3/l1``)."""
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"rnn: nonlinearity must be one of {NONLINEARITIES}, got "
                         f"{nonlinearity!r}")
    fn = RNN(bias_ih is not None, nonlinearity) if fused else None
    cell = functools.partial(rnn_cell, nonlinearity=nonlinearity)
    return _run("rnn", fn, cell, x, [h0], [weight_ih, weight_hh, bias_ih, bias_hh],
                layer)  # type: ignore[return-value]


def lstm(x: Any, h0: Tensor | None, c0: Tensor | None, weight_ih: Tensor,
         weight_hh: Tensor, bias_ih: Tensor | None = None, bias_hh: Tensor | None = None,
         fused: bool = True, layer: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """One LSTM layer over a time-major sequence x (T, N, D) from h0 and c0 (N, H)
    (None: zeros). Returns (h_1..h_T as (T, N, H), h_T, c_T). ``fused=False`` runs the
    composed twin (``layer`` only labels its states in explain: ``h_3/l1``)."""
    fn = LSTM(bias_ih is not None) if fused else None
    return _run("lstm", fn, lstm_cell, x, [h0, c0], [weight_ih, weight_hh, bias_ih, bias_hh],
                layer)  # type: ignore[return-value]


def gru(x: Any, h0: Tensor | None, weight_ih: Tensor, weight_hh: Tensor,
        bias_ih: Tensor | None = None, bias_hh: Tensor | None = None, fused: bool = True,
        layer: int | None = None) -> tuple[Tensor, Tensor]:
    """One GRU layer over a time-major sequence x (T, N, D) from h0 (N, H) (None:
    zeros). Returns (h_1..h_T as (T, N, H), h_T). ``fused=False`` runs the composed
    twin (``layer`` only labels its states in explain: ``h_3/l1``)."""
    fn = GRU(bias_ih is not None) if fused else None
    return _run("gru", fn, gru_cell, x, [h0], [weight_ih, weight_hh, bias_ih, bias_hh],
                layer)  # type: ignore[return-value]
