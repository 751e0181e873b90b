"""Language models: predict the next word from the words so far.

``RNNLM`` is the book's ``Rnnlm`` (embedding → LSTM → affine to the vocabulary) and, with
``num_layers=2``, dropout and tied weights, its ``BetterRnnlm`` (Zaremba et al.'s
medium model). ``TransformerLM`` is a small GPT: causal self-attention instead of a
recurrence. ``generate`` writes text with any of them: greedily, or by sampling with a
temperature and a top-k cut.

A language model reads a long stream of tokens one window at a time (truncated
backpropagation through time, ``chainrule.data.BPTTLoader``). Its hidden state carries
over from one window to the next, *detached*: the next window starts where the last
one ended, but its gradient stops at the window's edge, so memory does not grow with
the length of the stream.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

import chainrule.functional as F
from chainrule.nn.attention import PositionalEmbedding, TransformerBlock, causal_mask
from chainrule.nn.container import ModuleList
from chainrule.nn.init import RngLike, make_rng, normal_, zeros_
from chainrule.nn.layers import Dropout, Embedding, Linear, _check_positive
from chainrule.nn.module import Module, Parameter
from chainrule.nn.normalization import LayerNorm
from chainrule.nn.recurrent import GRU, LSTM, RNN
from chainrule.tensor import Tensor, no_grad

__all__ = ["RNNLM", "TransformerLM", "generate", "sample_next"]

_CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}


class RNNLM(Module):
    """A recurrent language model: ids (N, T) → logits (N, T, vocab_size).

    embedding (vocab_size × embedding_dim) → dropout → ``num_layers`` LSTM layers (dropout
    between them) → dropout → affine to the vocabulary. ``tie_weights`` makes the output
    layer share the embedding matrix (logits = h·Eᵀ + b; needs hidden_size ==
    embedding_dim): fewer parameters and, as Press & Wolf (2017) found, a better model.
    ``cell`` may also be 'gru' or 'rnn' (tanh).

    The model carries its recurrent state from one call to the next (as the book's
    ``Rnnlm`` does), detached from the graph; ``reset_state()`` forgets it, and
    ``chainrule.train.fit``/``evaluate`` call it at the start of every pass over the data.
    Weights start as in PyTorch's word-language-model example: the embedding and the
    output layer uniform in ±0.1, the output bias zero, the LSTM as ``nn.LSTM``.
    """

    def __init__(self, vocab_size: int, embedding_dim: int = 100, hidden_size: int = 100,
                 num_layers: int = 1, dropout: float = 0.0, tie_weights: bool = False,
                 cell: str = "lstm", seed: int | None = None, rng: RngLike = None,
                 dtype: Any = np.float32) -> None:
        super().__init__()
        if cell not in _CELLS:
            raise ValueError(f"cell must be one of {sorted(_CELLS)}, got {cell!r}")
        if tie_weights and hidden_size != embedding_dim:
            raise ValueError(
                f"tie_weights needs hidden_size == embedding_dim (the output layer reuses "
                f"the {embedding_dim}-wide embedding), got hidden_size={hidden_size}")
        generator = make_rng(rng, seed)
        self.vocab_size, self.cell = vocab_size, cell
        self.tie_weights = bool(tie_weights)
        self.embedding = Embedding(vocab_size, embedding_dim, rng=generator, dtype=dtype)
        self.embedding.weight.data[...] = generator.uniform(-0.1, 0.1,
                                                            self.embedding.weight.shape)
        self.rnn = _CELLS[cell](embedding_dim, hidden_size, num_layers=num_layers,
                                dropout=dropout if num_layers > 1 else 0.0,
                                batch_first=True, rng=generator, dtype=dtype)
        self.input_dropout = Dropout(dropout, rng=generator)
        self.output_dropout = Dropout(dropout, rng=generator)
        if self.tie_weights:  # logits = h·Eᵀ + b: only the bias is the output layer's own
            self.decoder_bias = Parameter(np.zeros(vocab_size, dtype=dtype))
        else:
            self.decoder = Linear(hidden_size, vocab_size, rng=generator, dtype=dtype)
            self.decoder.weight.data[...] = generator.uniform(-0.1, 0.1,
                                                              self.decoder.weight.shape)
        self.state: Any = None  # the carried (detached) recurrent state

    def reset_state(self) -> None:
        """Forget the carried state: the next call starts from zeros."""
        self.state = None

    def forward(self, ids: Any, state: Any = None) -> Tensor:
        """Logits (N, T, vocab_size) for the ids (N, T); the final recurrent state is kept
        (detached) in ``self.state`` and used by the next call unless ``state`` is given.
        """
        ids = ids.data if isinstance(ids, Tensor) else np.asarray(ids)
        if ids.ndim != 2:
            raise ValueError(f"RNNLM expects token ids of shape (batch, time), got shape "
                             f"{ids.shape}")
        state = self.state if state is None else state
        if state is not None and _batch_of(state) != ids.shape[0]:
            raise ValueError(
                f"the carried state is for a batch of {_batch_of(state)}, but this batch "
                f"has {ids.shape[0]} rows; call reset_state() before a new stream")
        x = self.input_dropout(self.embedding(ids))            # (N, T, E)
        hs, state = self.rnn(x, state)                         # (N, T, H)
        self.state = _detached(state)
        hs = self.output_dropout(hs)
        if self.tie_weights:
            return F.linear(hs, self.embedding.weight.T, self.decoder_bias)  # h·Eᵀ + b
        return self.decoder(hs)

    def extra_repr(self) -> str:
        return f"tie_weights={self.tie_weights}"


def _detached(state: Any) -> Any:
    """The state (h, or (h, c) for an LSTM) cut from the graph."""
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def _batch_of(state: Any) -> int:
    h = state[0] if isinstance(state, tuple) else state
    return h.shape[1]  # (num_layers, N, H)


# --------------------------------------------------------------------------- Transformer
class TransformerLM(Module):
    """A decoder-only Transformer language model (a small GPT): ids (N, T) → logits
    (N, T, vocab_size).

    token embedding + learned positions (``PositionalEmbedding``) → dropout →
    ``num_layers`` pre-norm ``TransformerBlock``s, each position attending only to
    itself and the positions before it (``causal_mask``) → final ``LayerNorm`` → output
    to the vocabulary, by default tied to the embedding (logits = h·Eᵀ + b).
    ``dim_feedforward`` None means 4·d_model.

    The model has no state: each call reads at most ``context`` tokens (a longer input
    is an error), and ``generate(model, prompt, steps)`` re-reads the last ``context``
    tokens for every new one. Weights start as GPT-2's: every
    weight matrix and embedding N(0, 0.02²), the two projections that end a residual
    branch divided by √(2·num_layers), biases 0.
    """

    def __init__(self, vocab_size: int, d_model: int = 128, nhead: int = 4,
                 num_layers: int = 4, dim_feedforward: int | None = None,
                 context: int = 64, dropout: float = 0.1, tie_weights: bool = True,
                 activation: str = "gelu", seed: int | None = None, rng: RngLike = None,
                 dtype: Any = np.float32) -> None:
        super().__init__()
        generator = make_rng(rng, seed)
        num_layers = _check_positive("num_layers", num_layers)
        self.vocab_size, self.context = vocab_size, context
        self.tie_weights = bool(tie_weights)
        self.embedding = Embedding(vocab_size, d_model, rng=generator, dtype=dtype)
        self.position = PositionalEmbedding(context, d_model, rng=generator, dtype=dtype)
        self.dropout = Dropout(dropout, rng=generator)
        self.layers = ModuleList(
            TransformerBlock(d_model, nhead, dim_feedforward, dropout, activation,
                             batch_first=True, norm_first=True, rng=generator, dtype=dtype)
            for _ in range(num_layers))
        self.norm = LayerNorm(d_model, dtype=dtype)
        if self.tie_weights:  # logits = h·Eᵀ + b: only the bias is the output layer's own
            self.decoder_bias = Parameter(np.zeros(vocab_size, dtype=dtype))
        else:
            self.decoder = Linear(d_model, vocab_size, rng=generator, dtype=dtype)
        _init_like_gpt2(self, num_layers, generator)

    def forward(self, ids: Any) -> Tensor:
        """Logits (N, T, vocab_size) for the ids (N, T), T ≤ context: position t is
        predicted from the tokens 0..t."""
        ids = ids.data if isinstance(ids, Tensor) else np.asarray(ids)
        if ids.ndim != 2:
            raise ValueError(f"TransformerLM expects token ids of shape (batch, time), got "
                             f"shape {ids.shape}")
        T = ids.shape[1]
        if T > self.context:
            raise ValueError(
                f"TransformerLM reads at most context={self.context} tokens at a time, got "
                f"{T}; cut the input into windows (nn.generate re-reads only the "
                f"last {self.context})")
        x = self.dropout(self.position(self.embedding(ids)))    # (N, T, E)
        mask = causal_mask(T)                                   # (T, T): no peeking ahead
        for layer in self.layers:
            x = layer(x, src_mask=mask)
        x = self.norm(x)
        if self.tie_weights:
            return F.linear(x, self.embedding.weight.T, self.decoder_bias)  # h·Eᵀ + b
        return self.decoder(x)

    def extra_repr(self) -> str:
        return f"context={self.context}, tie_weights={self.tie_weights}"


def _init_like_gpt2(model: Module, num_layers: int, rng: np.random.Generator) -> None:
    """GPT-2's initialisation: every weight matrix and embedding N(0, 0.02²), the
    projections that end a residual branch (attention's ``out_proj``, the feed-forward
    ``linear2``) divided by √(2·num_layers), so that the sum of 2·num_layers branches
    keeps its size; biases 0 (LayerNorm's scales stay 1)."""
    for name, param in model.named_parameters():
        if param.ndim == 2:
            std = 0.02
            if name.endswith(("out_proj.weight", "linear2.weight")):
                std /= math.sqrt(2 * num_layers)
            normal_(param, std=std, rng=rng)
        elif name.endswith("bias"):
            zeros_(param)


# --------------------------------------------------------------------------- generation
def sample_next(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                greedy: bool = False, rng: np.random.Generator | None = None) -> int:
    """The next token drawn from the logits (V,) of the last position.

    ``greedy`` takes the arg-max; otherwise softmax(logits / temperature), restricted to
    the ``top_k`` most likely tokens if given, is sampled (a low temperature sharpens
    the distribution, a high one flattens it).
    """
    logits = np.asarray(logits, dtype=np.float64).reshape(-1)
    if greedy:
        return int(np.argmax(logits))
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r} (use "
                         "greedy=True for the arg-max)")
    scaled = logits / temperature
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise ValueError(f"top_k must be a positive int, got {top_k!r}")
        if top_k < scaled.size:
            cut = np.partition(scaled, -top_k)[-top_k]
            scaled = np.where(scaled >= cut, scaled, -np.inf)
    p = np.exp(scaled - scaled.max())
    p /= p.sum()
    rng = rng if rng is not None else np.random.default_rng()
    return int(rng.choice(p.size, p=p))


def generate(model: Any, prompt: Sequence[int], steps: int, temperature: float = 1.0,
             top_k: int | None = None, greedy: bool = False, skip: Sequence[int] = (),
             context: int | None = None, seed: int | None = None) -> list[int]:
    """Continue ``prompt`` (a list of ids) by ``steps`` tokens; returns the new ids.

    A model with ``reset_state()`` (a recurrent one) reads the prompt once and then one
    token at a time, carrying its state; any other model (a Transformer) re-reads the
    last ``context`` tokens every step (by default the model's own ``context``, if it
    has one). Tokens in ``skip`` (``<unk>``, say) are never
    produced. Runs in eval mode without recording a graph; the model's mode and carried
    state are restored afterwards.
    """
    if len(prompt) == 0:
        raise ValueError("generate needs a prompt of at least one token")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    rng = np.random.default_rng(seed)
    recurrent = hasattr(model, "reset_state")
    if context is None:  # a Transformer knows how far it can read
        context = getattr(model, "context", None)
    was_training, saved_state = model.training, getattr(model, "state", None)
    model.eval()
    produced: list[int] = []
    try:
        with no_grad():
            if recurrent:
                model.reset_state()
            window = list(prompt)
            for _ in range(steps):
                feed = window if not recurrent or not produced else window[-1:]
                if not recurrent and context is not None:
                    feed = feed[-context:]
                logits = model(np.asarray([feed], dtype=np.int64)).data[0, -1].copy()
                if skip:
                    logits[list(skip)] = -np.inf
                token = sample_next(logits, temperature, top_k, greedy, rng)
                produced.append(token)
                window.append(token)
    finally:
        model.train(was_training)
        if recurrent:
            model.state = saved_state
    return produced
