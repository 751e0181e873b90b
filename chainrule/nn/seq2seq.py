"""Sequence to sequence: an encoder LSTM reads the question, a decoder LSTM writes the
answer, one token after another ("Deep Learning from Scratch 2", chapters 7 and 8).

``Seq2Seq`` is the book's ``Seq2seq``: the encoder's final hidden state h is the
decoder's initial one (its memory cell starts at zero); with ``peeky=True`` (the book's
``PeekySeq2seq``) h is also concatenated to the decoder's input at every step and to
the input of its output layer. ``AttentionSeq2Seq`` is the book's ``AttentionSeq2seq``:
at every step the decoder also looks at all the encoder's states through dot-product
(Luong) attention, ``luong_attention``.

Training uses teacher forcing: the decoder reads the true answer shifted by one (its
inputs are ``answer[:, :-1]``, starting with the start symbol, and its targets
``answer[:, 1:]``), so both LSTMs run over whole sequences as single fused operations.
``generate`` answers new questions greedily, feeding each output back in.

Weights start as in the book: embeddings N(0, 0.01²), every other weight matrix
N(0, 1/fan_in) ("Xavier" as the book uses it), biases zero.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import chainrule.functional as F
from chainrule.nn.attention import dot_product_attention
from chainrule.nn.init import RngLike, make_rng
from chainrule.nn.layers import Embedding, Linear, _check_positive
from chainrule.nn.module import Module
from chainrule.nn.recurrent import LSTM
from chainrule.tensor import Tensor, no_grad

__all__ = ["Seq2Seq", "AttentionSeq2Seq", "luong_attention"]


def luong_attention(queries: Tensor, states: Tensor) -> tuple[Tensor, Tensor]:
    """Dot-product attention of every query over every state.

    ``queries`` (N, Tq', H) (the decoder's hidden states), ``states`` (N, Ts, H) (the
    encoder's). The score of state s for query t is their dot product; the weights are
    the softmax of the scores over the states (each row sums to 1), and the context is
    the weighted sum of the states. Returns (context (N, Tq', H), weights (N, Tq', Ts)).
    """
    # the states are both the keys and the values; Luong's scores are not scaled
    return dot_product_attention(queries, states, states, scale=1.0)


def _ids(value: Any, name: str) -> np.ndarray:
    ids = value.data if isinstance(value, Tensor) else np.asarray(value)
    if ids.ndim != 2 or ids.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integer token ids of shape (batch, time), got "
                         f"shape {ids.shape} and dtype {ids.dtype}")
    return ids


class Seq2Seq(Module):
    """An encoder-decoder of two LSTMs: (questions (N, Tq), decoder inputs (N, Ta)) →
    logits (N, Ta, vocab_size).

    Encoder: embedding (vocab_size × wordvec_size) → LSTM (hidden_size); its final
    hidden state h starts the decoder. Decoder: embedding → LSTM → affine to the
    vocabulary. ``peeky`` feeds h to every decoder step as well, concatenated to the
    embedded input and to the LSTM's output before the affine layer. Reversing the
    question (the book's other trick) is done to the data, not here.

    ``generate(questions, start_id, length)`` decodes greedily. ``attention_weights``
    holds the attention of the last call (``AttentionSeq2Seq`` only; None here).
    """

    def __init__(self, vocab_size: int, wordvec_size: int = 16, hidden_size: int = 128,
                 peeky: bool = False, seed: int | None = None, rng: RngLike = None,
                 dtype: Any = np.float32) -> None:
        super().__init__()
        V = self.vocab_size = _check_positive("vocab_size", vocab_size)
        D = self.wordvec_size = _check_positive("wordvec_size", wordvec_size)
        H = self.hidden_size = _check_positive("hidden_size", hidden_size)
        self.peeky = bool(peeky)
        generator = make_rng(rng, seed)
        self.encoder_embedding = Embedding(V, D, rng=generator, dtype=dtype)
        self.encoder = LSTM(D, H, batch_first=True, rng=generator, dtype=dtype)
        self.decoder_embedding = Embedding(V, D, rng=generator, dtype=dtype)
        self.decoder = LSTM(D + H * self.peeky, H, batch_first=True, rng=generator,
                            dtype=dtype)
        self.output = Linear(self._readout_size(), V, rng=generator, dtype=dtype)
        self._book_init(generator)
        self.attention_weights: np.ndarray | None = None

    def _readout_size(self) -> int:
        return self.hidden_size * (2 if self.peeky else 1)

    def _book_init(self, rng: np.random.Generator) -> None:
        for name, param in self.named_parameters():
            if name.split(".")[-1].startswith("bias"):
                values = np.zeros(param.shape)
            elif name.endswith("embedding.weight"):
                values = rng.standard_normal(param.shape) * 0.01
            else:  # (in, out) layout: fan_in = rows
                values = rng.standard_normal(param.shape) / math.sqrt(param.shape[0])
            param.data[...] = values

    # ------------------------------------------------------------------ the two halves
    def encode(self, questions: Any) -> tuple[Tensor, Tensor]:
        """The encoder's hidden states (N, Tq, H) at every step, and the last one (N, H)."""
        hs, (h, _) = self.encoder(self.encoder_embedding(_ids(questions, "questions")))
        return hs, h[0]

    def decode(self, encoded: tuple[Tensor, Tensor], inputs: Any,
               state: tuple[Tensor, Tensor] | None = None
               ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Logits (N, T, V) for the decoder inputs (N, T), from the decoder's ``state``
        (h, c) of shape (1, N, H) each (None: h from the encoder, c zero); returns them
        with the state after the last step, so decoding can go on from there."""
        hs_enc, h_enc = encoded
        ids = _ids(inputs, "decoder inputs")
        N, T = ids.shape
        if N != h_enc.shape[0]:
            raise ValueError(f"the decoder inputs have {N} rows but the questions "
                             f"{h_enc.shape[0]}")
        if state is None:
            h0 = F.unsqueeze(h_enc, 0)
            state = (h0, Tensor._wrap(np.zeros(h0.shape, dtype=h0.dtype)))
        x = self.decoder_embedding(ids)                                 # (N, T, D)
        peek = F.broadcast_to(F.unsqueeze(h_enc, 1), (N, T, self.hidden_size)) \
            if self.peeky else None
        if peek is not None:
            x = F.concatenate([peek, x], axis=-1)                       # (N, T, H + D)
        hs, state = self.decoder(x, state)                              # (N, T, H)
        features = self._readout(hs, hs_enc, peek)
        return self.output(features), state

    def _readout(self, hs: Tensor, hs_enc: Tensor, peek: Tensor | None) -> Tensor:
        """What the output layer reads: the decoder's states (with h, when peeky)."""
        return hs if peek is None else F.concatenate([peek, hs], axis=-1)

    # ------------------------------------------------------------------ use
    def forward(self, questions: Any, decoder_inputs: Any) -> Tensor:
        """Logits (N, Ta, V) for every step of the decoder reading ``decoder_inputs``
        (N, Ta) (teacher forcing: the answer without its last token)."""
        encoded = self.encode(questions)
        logits, _ = self.decode(encoded, decoder_inputs)
        return logits

    def generate(self, questions: Any, start_id: int, length: int) -> np.ndarray:
        """Greedy answers (N, length) to ``questions`` (N, Tq): the decoder starts from
        ``start_id`` and reads its own arg-max output at every next step. Runs in eval
        mode without a graph; ``attention_weights`` then holds (N, length, Tq)."""
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) \
                or length < 1:
            raise ValueError(f"length must be a positive int, got {length!r}")
        if not 0 <= start_id < self.vocab_size:
            raise ValueError(f"start_id must be a token id below {self.vocab_size}, got "
                             f"{start_id!r}")
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                encoded = self.encode(questions)
                token = np.full((encoded[1].shape[0], 1), start_id, dtype=np.int64)
                state, answer, weights = None, [], []
                for _ in range(length):
                    logits, state = self.decode(encoded, token, state)
                    token = logits.data.argmax(axis=-1)
                    answer.append(token)
                    weights.append(self.attention_weights)
        finally:
            self.train(was_training)
        if weights[0] is not None:
            self.attention_weights = np.concatenate(weights, axis=1)
        return np.concatenate(answer, axis=1)

    def extra_repr(self) -> str:
        return "peeky=True" if self.peeky else ""


class AttentionSeq2Seq(Seq2Seq):
    """``Seq2Seq`` whose decoder attends to all the encoder's states: at every step,
    ``luong_attention`` of its hidden state h_t over the encoder's states gives a
    context vector c_t, and the output layer reads concat(c_t, h_t) (the book's
    ``AttentionSeq2seq``). After each call, ``attention_weights`` (N, Ta, Tq) holds
    where every output step looked (each row sums to 1 over the question).
    """

    def __init__(self, vocab_size: int, wordvec_size: int = 16, hidden_size: int = 256,
                 seed: int | None = None, rng: RngLike = None,
                 dtype: Any = np.float32) -> None:
        super().__init__(vocab_size, wordvec_size, hidden_size, peeky=False, seed=seed,
                         rng=rng, dtype=dtype)

    def _readout_size(self) -> int:
        return 2 * self.hidden_size

    def _readout(self, hs: Tensor, hs_enc: Tensor, peek: Tensor | None) -> Tensor:
        context, weights = luong_attention(hs, hs_enc)
        self.attention_weights = weights.data.copy()
        return F.concatenate([context, hs], axis=-1)                   # (N, T, 2H)

    def extra_repr(self) -> str:
        return ""
